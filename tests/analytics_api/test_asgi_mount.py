"""footfall's read API mounted inside an ASGI app with a2wsgi, as the README shows."""

from __future__ import annotations

from a2wsgi import WSGIMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from footfall.analytics_api import create_app
from footfall.middleware import FootfallASGIMiddleware
from footfall.settings import Settings

AUTH = {"Authorization": "Bearer test-admin-token"}


def test_read_api_mounted_in_a_starlette_app(settings: Settings, drain) -> None:
    api = create_app(settings)

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"visitor {request.state.footfall_visit.visitor_number}")

    app = FootfallASGIMiddleware(
        Starlette(routes=[Route("/", home), Mount("/", app=WSGIMiddleware(api))]), settings)
    try:
        with TestClient(app, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0"}) as client:
            assert client.get("/").text == "visitor 1"
            tracked = client.post("/analytics/track", json={"eventType": "page_view", "path": "/"})
            assert tracked.json()["visitor_number"] == 1
            assert client.get("/analytics/stats").status_code == 401
            drain()
            stats = client.get("/analytics/stats", headers=AUTH).json()
            assert (stats["total_visits"], stats["unique_visitors"], stats["page_views"]) == (1, 1, 1)
            client.portal.call(app.aclose)
    finally:
        api.extensions["footfall"].close()
