"""footfall's ASGI app, what ``footfall serve`` runs: live streams native on asyncio, the rest Flask.

- ``GET /analytics/live?site=S``: Server-Sent Events, a ``visitor_update`` event on every change of
  the site's numbers (at most one per second), ``id:`` lines for resuming with ``Last-Event-ID``,
  and a ``: ping`` comment every ``heartbeat`` seconds (15 by default) so proxies keep it open
  (:mod:`footfall.live.sse`);
- ``/analytics/ws?site=S``: the same messages over a WebSocket;
- everything else: footfall's Flask app (:func:`~footfall.analytics_api.create_app`) through
  a2wsgi's thread pool, and ``POST /analytics/track`` answered natively by
  :class:`~footfall.middleware.asgi.FootfallASGIMiddleware`, which wraps it all.

Why this worker model: an open stream is a coroutine waiting on an :class:`asyncio.Event`, a few
kilobytes, not a thread. Under gunicorn's threaded workers each dashboard would hold one of a worker's
few threads for as long as it is open, and a few dozen dashboards would leave none for tracking.
Here hundreds of streams share one event loop with the tracking requests, one Redis subscription per
process feeds them all (:mod:`footfall.live.hub`), and only the Flask endpoints use threads.

Who may read the streams: the rule of ``GET /api/stats`` (:func:`~footfall.analytics_api.live.
stats_denial`), evaluated by the Flask app itself so that it is one rule, whatever it accepts (the
admin bearer token; the dashboard's cookie, which is what a browser's ``EventSource`` can send). A
WebSocket authorized by a cookie must come from an allowed origin (``FOOTFALL_CORS_ORIGINS``) or the
same host: browsers send cookies with cross-site WebSocket handshakes, and CORS does not apply to them
(OWASP, "Cross-Site WebSocket Hijacking").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio
from a2wsgi import WSGIMiddleware
from flask import Flask
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from footfall.analytics_api.app import create_app, untracked_api
from footfall.analytics_api.live import LIVE_STREAMS_CONFIG, stats_denial
from footfall.analytics_api.routes import SITE_RE
from footfall.errors import StoreUnavailable
from footfall.live.hub import HubClosed, LiveHub
from footfall.live.sse import HEARTBEAT, LiveMessage, event_frame, needs_catch_up, retry_frame
from footfall.live.store import AsyncLiveStore, async_live_redis_client
from footfall.middleware.asgi import FootfallASGIMiddleware
from footfall.middleware.async_tracker import build_async_tracker
from footfall.middleware.cors import cors_headers
from footfall.settings import Settings

__all__ = ["create_asgi_app", "LiveEndpoints"]

log = logging.getLogger("footfall.live")

RECONNECT_MS = 1000  # the SSE retry: a dropped stream comes back within about a second
WSGI_THREADS = 8  # a2wsgi threads for the Flask endpoints (gunicorn gthread's 8 before)


class LiveEndpoints:
    """The two stream endpoints (Starlette handlers).

    :param settings: footfall's settings.
    :param flask_app: footfall's Flask app, whose rule decides who may read.
    :param hub: the process's :class:`~footfall.live.hub.LiveHub`.
    :param heartbeat: seconds between ``: ping`` comments of an idle SSE stream.
    """

    def __init__(self, settings: Settings, flask_app: Flask, hub: LiveHub, *, heartbeat: float = 15.0) -> None:
        self.settings = settings
        self.flask_app = flask_app
        self.hub = hub
        self.heartbeat = heartbeat

    def denial(self, path: str, headers: list[tuple[str, str]]) -> JSONResponse | None:
        """``None`` when a request with ``headers`` may read live stats, else the 401/403 answer."""
        if self.settings.public_stats:
            return None
        with self.flask_app.test_request_context(path, headers=headers):
            answer = stats_denial()
            if answer is None:
                return None
            response = self.flask_app.make_response(answer)
        extra = {k: v for k, v in response.headers.items() if k.lower() == "www-authenticate"}
        return JSONResponse(response.get_json(), response.status_code, headers=extra)

    def _site(self, raw: str | None) -> str:
        site = raw or self.settings.default_site
        if not SITE_RE.match(site):
            raise HTTPException(400, f"site must be 1-100 letters, digits and . _ : -, got {site[:40]!r}")
        return site

    async def stream(self, request: Request) -> Response:
        """``GET /analytics/live?site=S``: the Server-Sent Events stream (see the module docstring).

        :raise 400: a malformed ``site``.
        :raise 401/403: not public and no admin credentials.
        :raise 503: Redis did not answer (the browser's EventSource retries by itself).
        """
        site = self._site(request.query_params.get("site"))
        cors = cors_headers(request.headers.get("origin"), self.settings.cors_origins)
        denial = self.denial(request.url.path, list(request.headers.items()))
        if denial is not None:
            denial.headers.update(dict(cors))
            return denial
        try:
            await self.hub.current(site)  # answer 503 now, not an empty stream, when Redis is down
        except StoreUnavailable as exc:
            return JSONResponse({"error": str(exc)}, 503, headers=dict(cors))
        last_id = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
        headers = {**dict(cors), "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        if request.method == "HEAD":  # the headers a GET would get, and no never-ending body
            return Response(headers=headers, media_type="text/event-stream")
        return StreamingResponse(self._frames(site, last_id), media_type="text/event-stream", headers=headers)

    async def _frames(self, site: str, last_id: str | None) -> AsyncIterator[bytes]:
        yield retry_frame(RECONNECT_MS)
        try:
            async with self.hub.listen(site) as listener:
                current = await self.hub.current(site)
                sent = last_id
                if needs_catch_up(last_id, current):
                    yield event_frame(current)
                    sent = current.event_id
                while True:
                    message = await listener.next(self.heartbeat)
                    if message is None:
                        yield HEARTBEAT
                    elif message.event_id != sent:
                        yield event_frame(message)
                        sent = message.event_id
        except (HubClosed, StoreUnavailable):
            return  # the server stops or Redis went away: the browser reconnects after `retry`

    def _origin_refused(self, websocket: WebSocket) -> bool:
        """A cookie-authorized handshake from a foreign origin (see the module docstring)."""
        origin = websocket.headers.get("origin")
        if self.settings.public_stats or not origin or websocket.headers.get("authorization"):
            return False
        host = websocket.headers.get("host", "")
        return origin.rstrip("/") not in self.settings.cors_origins and urlsplit(origin).netloc != host

    async def socket(self, websocket: WebSocket) -> None:
        """``/analytics/ws?site=S``: the same messages as :meth:`stream`, one JSON text frame each; the
        first is the current state. What the client sends is ignored.

        A refused handshake is answered with an HTTP error (403, or 400 for a malformed ``site``)
        where the server supports the denial-response extension, else closed with 1008.
        """
        try:
            site = self._site(websocket.query_params.get("site"))
        except HTTPException as exc:
            await self._refuse(websocket, JSONResponse({"error": exc.detail}, 400))
            return
        denial = self.denial(websocket.url.path, list(websocket.headers.items()))
        if denial is None and self._origin_refused(websocket):
            denial = JSONResponse({"error": f"origin {websocket.headers.get('origin')!r} may not open this stream"},
                                  403)
        if denial is not None:
            await self._refuse(websocket, denial)
            return
        await websocket.accept()
        incoming = asyncio.ensure_future(self._until_closed(websocket))
        try:
            async with self.hub.listen(site) as listener:
                sent = await self._send(websocket, await self.hub.current(site), None)
                while not incoming.done():
                    waiting = asyncio.ensure_future(listener.next(self.heartbeat))
                    await asyncio.wait({incoming, waiting}, return_when=asyncio.FIRST_COMPLETED)
                    if not waiting.done():
                        waiting.cancel()
                        break
                    message = waiting.result()
                    if message is not None:
                        sent = await self._send(websocket, message, sent)
        except (HubClosed, StoreUnavailable, WebSocketDisconnect):
            pass
        finally:
            incoming.cancel()
            with contextlib.suppress(Exception):
                await websocket.close()

    @staticmethod
    async def _send(websocket: WebSocket, message: LiveMessage, sent: str | None) -> str | None:
        if message.event_id == sent:
            return sent
        await websocket.send_text(message.payload())
        return message.event_id

    @staticmethod
    async def _until_closed(websocket: WebSocket) -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    @staticmethod
    async def _refuse(websocket: WebSocket, response: JSONResponse) -> None:
        try:
            await websocket.send_denial_response(response)
        except RuntimeError:
            await websocket.close(code=1008)


async def _json_http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return JSONResponse({"error": detail}, status)


def create_asgi_app(
    settings: Settings | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    heartbeat: float = 15.0,
    coalesce: float = 1.0,
    sweep_interval: float = 1.0,
) -> FootfallASGIMiddleware:
    """Build footfall's ASGI app (see the module docstring).

    Clients connect lazily, in the server's event loop; the lifespan shutdown closes them all and
    ends the open streams.

    :param settings: footfall's settings; read from ``FOOTFALL_*`` variables when ``None``.
    :param clock: returns the current UTC datetime (tests pass a simulated clock).
    :param heartbeat: seconds between the ``: ping`` comments of an idle SSE stream.
    :param coalesce: minimum seconds between two messages of one site.
    :param sweep_interval: seconds between two looks for activity leaving the window.
    :return: the app, wrapped in :class:`~footfall.middleware.asgi.FootfallASGIMiddleware`.
    :raises ConfigurationError: as :func:`~footfall.analytics_api.create_app`.
    """
    from footfall.stores.connect import async_mongo_database

    settings = untracked_api(settings or Settings.from_env())
    flask_app = create_app(settings, clock=clock, track_requests=False)
    flask_app.config[LIVE_STREAMS_CONFIG] = True  # the dashboard page opens /analytics/live (not polling)
    db = async_mongo_database(settings) if settings.mongodb_uri else None
    store = AsyncLiveStore(async_live_redis_client(settings), db, settings, clock)
    pubsub_client = redis.asyncio.Redis.from_url(settings.redis_url or "", socket_connect_timeout=2.0,
                                                 health_check_interval=30)
    hub = LiveHub(store, pubsub_client, coalesce=coalesce, sweep_interval=sweep_interval)
    endpoints = LiveEndpoints(settings, flask_app, hub, heartbeat=heartbeat)
    middleware: FootfallASGIMiddleware | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await hub.aclose()
        if middleware is not None:
            await middleware.aclose()
        await asyncio.to_thread(flask_app.extensions["footfall"].close)

    routes: list[Any] = [
        Route("/analytics/live", endpoints.stream, methods=["GET"]),
        WebSocketRoute("/analytics/ws", endpoints.socket),
        Mount("/", app=WSGIMiddleware(flask_app, workers=WSGI_THREADS)),  # type: ignore[arg-type]
    ]
    starlette = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _json_http_error})
    middleware = FootfallASGIMiddleware(starlette, tracker=build_async_tracker(settings), clock=clock)
    return middleware
