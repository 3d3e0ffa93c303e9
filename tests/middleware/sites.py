"""The two wrapped sites the middleware suite runs every HTTP scenario against: a Flask app behind
:class:`~footfall.middleware.wsgi.FootfallMiddleware` and a Starlette app with the same routes behind
:class:`~footfall.middleware.asgi.FootfallASGIMiddleware`, each with ``httpx2`` clients in-process
(``httpx2.WSGITransport`` and Starlette's ``TestClient``, an ``httpx2.Client`` too).

The tests reach these through the fixtures of ``conftest.py`` (``make_site``, ``site``, ``build_site``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any, ClassVar

import anyio
import httpx2
from flask import Flask, jsonify, request
from flask import Response as FlaskResponse
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException

from footfall.middleware.asgi import SCOPE_KEY, STATE_KEY, FootfallASGIMiddleware
from footfall.middleware.core import Visit
from footfall.middleware.wsgi import ENVIRON_KEY, FootfallMiddleware
from footfall.settings import Settings

ADAPTERS = ("wsgi", "asgi")
BASE_URL = "http://testserver"
COOKIE_DOMAIN = "testserver.local"  # where http.cookiejar files cookies of a dotless host
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
TRACK_PATH = "/analytics/track"
STREAM_CHUNKS = (b"<!doctype html><title>stream</title>", b"<p>one</p>", b"<p>two</p>", b"<p>three</p>")

MISSING = object()  # what the app saw when the request had no ``footfall.visit`` key at all

HOME = "<!doctype html><title>home</title><p>home</p>"
CSS = "body { color: black }"
FAVICON = b"\x00\x00\x01\x00"
ROBOTS = "User-agent: *\nDisallow:\n"


def page_html(name: str) -> str:
    return f"<!doctype html><title>{name}</title><p>{name}</p>"


def error_page(status: int) -> str:
    """The HTML both apps answer an HTTP error (a 404, a 405) with."""
    title = f"{status} {HTTPStatus(status).phrase}"
    return f"<!doctype html><title>{title}</title><h1>{title}</h1>"


def describe(visit: Any) -> dict[str, Any]:
    """What ``/whoami`` answers for what the middleware published."""
    if visit is MISSING:
        return {"visit": "missing"}
    if visit is None:
        return {"visit": None}
    return {"visitor_id": visit.visitor_id, "session_id": visit.session_id,
            "is_new_visitor": visit.is_new_visitor, "is_new_session": visit.is_new_session}


def heard_headers(get: Callable[[str], str | None]) -> dict[str, str | None]:
    """The request headers a test may ask about afterwards (``None``: not sent)."""
    return {"cookie": get("cookie"), "user-agent": get("user-agent")}


# The WSGI site -------------------------------------------------------------------------------------


def build_flask_app(seen: list[Any], heard: list[dict[str, str | None]]) -> Flask:
    """HTML pages, a JSON endpoint, ``/echo`` (answers the request body), the excluded paths, HTTP
    errors as :func:`error_page`, and ``/whoami``, which answers with what the middleware published
    at ``environ["footfall.visit"]``; every request it serves (404s included) appends that to
    ``seen`` and its ``Cookie`` and ``User-Agent`` headers to ``heard``."""
    app = Flask("footfall_mw_tests", static_folder=None)

    @app.before_request
    def remember_visit() -> None:
        seen.append(request.environ.get(ENVIRON_KEY, MISSING))
        heard.append(heard_headers(lambda name: request.environ.get("HTTP_" + name.upper().replace("-", "_"))))

    @app.get("/")
    def home() -> str:
        return HOME

    @app.route("/page/<name>", methods=["GET", "POST"])
    def page(name: str) -> str:
        return page_html(name)

    @app.get("/api/data")
    def api_data() -> FlaskResponse:
        return jsonify(ok=True)

    @app.post("/echo")
    def echo() -> FlaskResponse:
        return FlaskResponse(request.get_data(), mimetype="application/octet-stream")

    @app.get("/static/<path:name>")
    def static_file(name: str) -> FlaskResponse:
        return FlaskResponse(CSS, mimetype="text/css")

    @app.get("/favicon.ico")
    def favicon() -> FlaskResponse:
        return FlaskResponse(FAVICON, mimetype="image/x-icon")

    @app.get("/robots.txt")
    def robots() -> FlaskResponse:
        return FlaskResponse(ROBOTS, mimetype="text/plain")

    @app.get("/whoami")
    def whoami() -> FlaskResponse:
        return jsonify(describe(request.environ.get(ENVIRON_KEY, MISSING)))

    @app.errorhandler(WerkzeugHTTPException)
    def http_error(exc: WerkzeugHTTPException) -> FlaskResponse:
        response = exc.get_response()
        response.set_data(error_page(response.status_code))
        return response

    return app


class ServerLikeWSGITransport(httpx2.WSGITransport):
    """``httpx2.WSGITransport`` plus two things WSGI servers do and it does not.

    - Header values reach ``environ`` decoded as latin-1 (PEP 3333), so a client can send bytes that
      are not ASCII; httpx2 decodes them as ASCII and raises before the app is called.
    - A chunked request body comes without ``CONTENT_LENGTH`` and with ``wsgi.input_terminated``
      (gunicorn, Werkzeug's server); httpx2 reads the body and sets ``CONTENT_LENGTH``.
    """

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        latin1 = {name.decode("ascii"): value.decode("latin-1")
                  for name, value in request.headers.raw if not value.isascii()}
        for name in latin1:
            request.headers[name] = "-"  # restored below, as the server would have decoded it
        app = self.app

        def server(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            for name, value in latin1.items():
                environ["HTTP_" + name.upper().replace("-", "_")] = value
            if chunked:
                environ.pop("CONTENT_LENGTH", None)
                environ["wsgi.input_terminated"] = True
            return app(environ, start_response)

        return httpx2.WSGITransport(server).handle_request(request)


# The ASGI site -------------------------------------------------------------------------------------


class RememberVisit:
    """Innermost Starlette middleware, the ASGI twin of Flask's ``before_request`` above: for every
    HTTP request the app serves (404s included) it appends ``scope["footfall.visit"]`` to ``seen``,
    after checking that ``request.state.footfall_visit`` is the same object."""

    def __init__(self, app: Any, seen: list[Any], heard: list[dict[str, str | None]]) -> None:
        self.app, self.seen, self.heard = app, seen, heard

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            req = Request(scope)
            visit = scope.get(SCOPE_KEY, MISSING)
            assert getattr(req.state, STATE_KEY, MISSING) is visit, "request.state.footfall_visit differs"
            self.seen.append(visit)
            self.heard.append(heard_headers(req.headers.get))
        await self.app(scope, receive, send)


def build_starlette_app(seen: list[Any], heard: list[dict[str, str | None]], lifespan_events: list[str]) -> Starlette:
    """The Flask app's routes on Starlette (same bodies and content types; ``OPTIONS /`` and HTTP
    errors answered as the Flask app answers them), plus ``/stream`` (an HTML page in
    ``STREAM_CHUNKS``), ``/state`` (the keys of ``scope["state"]``), the WebSocket ``/ws`` (echoes a
    text message as JSON, with whether footfall published anything) and a lifespan handler that
    appends ``"startup"`` and ``"shutdown"`` to ``lifespan_events`` and sets ``started_by_lifespan``
    in the lifespan state."""

    async def home(request: Request) -> Response:
        if request.method == "OPTIONS":  # Flask answers OPTIONS for every route itself
            return Response(status_code=200, headers={"Allow": "GET, HEAD, OPTIONS"})
        return HTMLResponse(HOME)

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html(request.path_params["name"]))

    async def api_data(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    async def static_file(request: Request) -> Response:
        if not request.path_params["name"]:  # Flask's <path:...> matches no empty name
            raise HTTPException(404)
        return Response(CSS, media_type="text/css")

    async def favicon(request: Request) -> Response:
        return Response(FAVICON, media_type="image/x-icon")

    async def robots(request: Request) -> Response:
        return Response(ROBOTS, media_type="text/plain")

    async def whoami(request: Request) -> Response:
        visit = request.scope.get(SCOPE_KEY, MISSING)
        assert getattr(request.state, STATE_KEY, MISSING) is visit
        return JSONResponse(describe(visit))

    async def stream(request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            for chunk in STREAM_CHUNKS:
                yield chunk
                await anyio.sleep(0)  # each chunk is its own http.response.body message

        return StreamingResponse(chunks(), media_type="text/html")

    async def state(request: Request) -> Response:
        return JSONResponse({"state": sorted(request.scope["state"]),
                             "started": getattr(request.state, "started_by_lifespan", False)})

    async def websocket_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_json({"echo": text, "visit_in_scope": SCOPE_KEY in websocket.scope,
                                   "visit_in_state": STATE_KEY in websocket.scope.get("state", {})})
        await websocket.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return HTMLResponse(error_page(exc.status_code), status_code=exc.status_code, headers=exc.headers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        lifespan_events.append("startup")
        yield {"started_by_lifespan": True}  # each request's scope["state"] starts as a copy of it
        lifespan_events.append("shutdown")

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET", "OPTIONS"]),
            Route("/page/{name}", page, methods=["GET", "POST"]),
            Route("/api/data", api_data),
            Route("/echo", echo, methods=["POST"]),
            Route("/static/{name:path}", static_file),
            Route("/favicon.ico", favicon),
            Route("/robots.txt", robots),
            Route("/whoami", whoami),
            Route("/stream", stream),
            Route("/state", state),
            WebSocketRoute("/ws", websocket_echo),
        ],
        middleware=[Middleware(RememberVisit, seen=seen, heard=heard)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # Flask does not redirect /static to /static/ either
    return app


# Sites ---------------------------------------------------------------------------------------------


class Site:
    """A wrapped app and its browser: ``client``, an ``httpx2.Client`` with a Firefox User-Agent and
    a cookie jar. Subclasses say how a client reaches the app and how the site is closed."""

    adapter: ClassVar[str]

    client: httpx2.Client

    def __init__(self, app: Any, middleware: Any, seen: list[Any], heard: list[dict[str, str | None]]) -> None:
        self.app = app
        self.middleware = middleware
        self.settings: Settings = middleware.settings
        self.seen = seen  # what the app found at footfall.visit, one entry per request it served
        self.heard = heard  # the Cookie and User-Agent headers of those requests
        self._clients: list[httpx2.Client] = []
        self.closed = False

    @property
    def tracker(self) -> Any:
        """The middleware's tracker (``Tracker`` or ``AsyncTracker``: same counters)."""
        return self.middleware.tracker

    @property
    def last_visit(self) -> Visit:
        visit = self.seen[-1]
        assert isinstance(visit, Visit), f"the app saw {visit!r}, not a Visit"
        return visit

    def _open_client(self) -> httpx2.Client:
        raise NotImplementedError

    def new_client(self, user_agent: str | None = FIREFOX_UA) -> httpx2.Client:
        """Another browser, with its own cookie jar; ``user_agent=None`` sends no User-Agent at all.
        A ``Cookie`` header passed to a request is sent as given, not merged with the jar."""
        client = self._open_client()
        self._clients.append(client)
        client.headers.pop("user-agent", None)
        if user_agent is not None:
            client.headers["User-Agent"] = user_agent
        return client

    def jar(self, client: httpx2.Client | None = None) -> dict[str, str]:
        """The footfall cookies in a client's jar, name -> raw (signed) value."""
        names = (self.settings.session_cookie_name, self.settings.visitor_cookie_name)
        return {cookie.name: cookie.value for cookie in (client or self.client).cookies.jar
                if cookie.name in names and cookie.value is not None}

    @staticmethod
    def set_cookie(client: httpx2.Client, name: str, value: str) -> None:
        """Put a cookie in a client's jar where the site's own ``Set-Cookie`` puts it (replacing it)."""
        client.cookies.set(name, value, domain=COOKIE_DOMAIN, path="/")

    def track(self, body: Any, client: httpx2.Client | None = None, *, headers: dict[str, str] | None = None,
              chunked: bool = False) -> httpx2.Response:
        """``POST`` to the track endpoint; ``body`` is JSON-encoded unless it is ``bytes``; with
        ``chunked`` it is sent with ``Transfer-Encoding: chunked`` and no ``Content-Length``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        content: bytes | Iterator[bytes] = iter([data]) if chunked else data
        return (client or self.client).post(TRACK_PATH, content=content,
                                            headers={"Content-Type": "application/json", **(headers or {})})

    def close(self) -> None:
        """Close the clients, stop the site's background drain (if one started) and close its store
        clients; a second call does nothing."""
        if self.closed:
            return
        self.closed = True
        for client in self._clients:
            client.close()
        self._close_middleware()

    def _close_middleware(self) -> None:
        raise NotImplementedError


class WSGISite(Site):
    """A Flask app wrapped as ``app.wsgi_app = FootfallMiddleware(app.wsgi_app, settings, clock=clock)``,
    driven through :class:`ServerLikeWSGITransport`."""

    adapter = "wsgi"

    def __init__(self, settings: Settings, *, tracker: Any = None, clock: Callable[[], Any]) -> None:
        seen: list[Any] = []
        heard: list[dict[str, str | None]] = []
        app = build_flask_app(seen, heard)
        middleware = FootfallMiddleware(app.wsgi_app, settings, tracker=tracker, clock=clock)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        super().__init__(app, middleware, seen, heard)
        self.client = self.new_client()

    def _open_client(self) -> httpx2.Client:
        return httpx2.Client(transport=ServerLikeWSGITransport(app=self.app), base_url=BASE_URL)

    def _close_middleware(self) -> None:
        self.middleware.close()


class ASGISite(Site):
    """A Starlette app wrapped as ``FootfallASGIMiddleware(app, settings, clock=clock)``, driven by
    Starlette's ``TestClient``.

    The first client is entered as a context manager (lifespan started, one event loop for the
    site's life: ``redis.asyncio`` and ``AsyncMongoClient`` connections belong to the loop that made
    them); every other client shares its portal, so its requests run on that loop too. Closing
    awaits ``middleware.aclose()`` on that loop, then leaves the client (lifespan shutdown).
    """

    adapter = "asgi"
    stream_chunks = STREAM_CHUNKS  # what ``/stream`` sends, one ``http.response.body`` message each

    def __init__(self, settings: Settings, *, tracker: Any = None, clock: Callable[[], Any]) -> None:
        seen: list[Any] = []
        heard: list[dict[str, str | None]] = []
        self.lifespan_events: list[str] = []
        app = build_starlette_app(seen, heard, self.lifespan_events)
        middleware = FootfallASGIMiddleware(app, settings, tracker=tracker, clock=clock)
        super().__init__(app, middleware, seen, heard)
        self.main = TestClient(middleware, base_url=BASE_URL, follow_redirects=False, client=("127.0.0.1", 50000))
        self.main.__enter__()
        self.main.headers["User-Agent"] = FIREFOX_UA
        self.client = self.main

    def _open_client(self) -> httpx2.Client:
        client = TestClient(self.middleware, base_url=BASE_URL, follow_redirects=False, client=("127.0.0.1", 50000))
        client.portal = self.main.portal  # the site's event loop, not one of its own per request
        return client

    def run(self, function: Callable[[], Any]) -> Any:
        """Await ``function()`` on the site's event loop."""
        assert self.main.portal is not None, "the site is closed"
        return self.main.portal.call(function)

    def _close_middleware(self) -> None:
        try:
            self.run(self.middleware.aclose)
        finally:
            self.main.__exit__(None, None, None)


SITES: dict[str, type[WSGISite] | type[ASGISite]] = {"wsgi": WSGISite, "asgi": ASGISite}
