"""The route template of a page path, from the wrapped app's own routing table (Flask, Starlette, FastAPI)."""

from __future__ import annotations

from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from footfall.middleware.route_templates import route_resolver_for


def test_flask_rules_through_the_bound_wsgi_app():
    app = Flask(__name__)
    app.add_url_rule("/users/<int:user_id>", "user", lambda user_id: "")
    app.add_url_rule("/docs/", "docs", lambda: "")
    app.add_url_rule("/only-post", "post", lambda: "", methods=["POST"])
    resolve = route_resolver_for(app.wsgi_app)  # what `app.wsgi_app = FootfallMiddleware(app.wsgi_app)` wraps
    assert resolve is not None
    assert resolve("/users/42") == "/users/<int:user_id>"
    assert resolve("/users/abc") is None  # the converter refuses it: Flask would 404
    assert resolve("/docs/") == "/docs/"
    assert resolve("/docs") is None  # Flask redirects to /docs/; the page view of /docs/ gets the route
    assert resolve("/only-post") is None
    assert resolve("/nowhere") is None
    assert route_resolver_for(app) is not None


async def _ok(request):
    return PlainTextResponse("")


def test_starlette_routes_and_mounts():
    app = Starlette(routes=[
        Route("/items/{item_id:int}", _ok),
        Mount("/api", routes=[Route("/v/{name}", _ok), Mount("/deep", routes=[Route("/{leaf}", _ok)])]),
        Route("/post", _ok, methods=["POST"]),
    ])
    resolve = route_resolver_for(app)
    assert resolve is not None
    assert resolve("/items/5") == "/items/{item_id:int}"
    assert resolve("/items/five") is None
    assert resolve("/api/v/3") == "/api/v/{name}"
    assert resolve("/api/deep/q") == "/api/deep/{leaf}"
    assert resolve("/post") is None
    assert resolve("/nope") is None


def test_fastapi_routes():
    app = FastAPI()

    @app.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, int]:
        return {"id": thing_id}

    resolve = route_resolver_for(app)
    assert resolve is not None
    assert resolve("/things/9") == "/things/{thing_id}"


def test_unknown_apps_have_no_resolver():
    def bare_wsgi(environ, start_response):
        return []

    assert route_resolver_for(bare_wsgi) is None
