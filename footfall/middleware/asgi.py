"""The ASGI adapter: ``app = FootfallASGIMiddleware(app)`` for Starlette, FastAPI and any ASGI app.

A pure ASGI middleware, as Starlette's ``SessionMiddleware``: it wraps ``send`` and adds the
``Set-Cookie`` headers on ``http.response.start``; ``lifespan`` and ``websocket`` scopes pass through
untouched; it never reads the body of a request it does not own. The decision is published at
``scope["footfall.visit"]`` and, for Starlette and FastAPI, at ``request.state.footfall_visit``. It
answers ``POST /analytics/track`` and its preflight, and ``GET /analytics/footfall.js``, itself. Store
I/O is awaited on ``redis.asyncio`` and pymongo's ``AsyncMongoClient``; every decision is the WSGI adapter's
(:mod:`footfall.middleware.core`, :mod:`footfall.middleware.track_endpoint`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from footfall.errors import InvalidEvent
from footfall.events import MAX_BODY_BYTES
from footfall.geo import client_ip
from footfall.middleware import track_endpoint as endpoint
from footfall.middleware.async_tracker import AsyncTracker, build_async_tracker
from footfall.middleware.background import BackgroundDrain
from footfall.middleware.core import Visit
from footfall.middleware.route_templates import RouteResolver, route_resolver_for
from footfall.middleware.tracker import RequestFacts, host_of
from footfall.settings import Settings

__all__ = ["FootfallASGIMiddleware", "SCOPE_KEY", "STATE_KEY"]

SCOPE_KEY = "footfall.visit"
STATE_KEY = "footfall_visit"  # request.state.footfall_visit in Starlette

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers, latin-1 decoded as the ASGI spec gives them; repeated ones joined."""
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        found[name] = f"{found[name]}; {value}" if name == "cookie" and name in found else value
    return found


def _facts(scope: Scope, headers: dict[str, str], trusted_proxies: tuple[Any, ...]) -> RequestFacts:
    peer = scope.get("client") or (None, None)
    return RequestFacts(
        method=scope.get("method", "GET").upper(),
        path=scope.get("path", "") or "/",
        query=scope.get("query_string", b"").decode("latin-1"),
        user_agent=headers.get("user-agent"),
        cookie_header=headers.get("cookie"),
        referrer=headers.get("referer", ""),
        host=host_of(headers.get("host") or (scope.get("server") or ("",))[0]),
        client_ip=client_ip(peer[0], headers.get("x-forwarded-for"), trusted_proxies),
    )


def _publish(scope: Scope, visit: Visit | None) -> None:
    scope[SCOPE_KEY] = visit
    state = scope.setdefault("state", {})
    if isinstance(state, MutableMapping):
        state[STATE_KEY] = visit


class FootfallASGIMiddleware:
    """Session-tracking ASGI middleware: the same cases, cookies, Redis keys, stream, request-path
    budget and fail-open behaviour as :class:`~footfall.middleware.wsgi.FootfallMiddleware`.

    :param asgi_app: the ASGI application to wrap.
    :param settings: footfall's settings; read from ``FOOTFALL_*`` variables when ``None``.
    :param tracker: a ready :class:`AsyncTracker` (tests); built from ``settings`` when ``None``.
    :param clock: returns the current UTC datetime (tests pass a simulated clock).
    :param route_resolver: ``resolver(path) -> route template or None``; found in the wrapped app
        (Starlette, FastAPI) when ``None``.
    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY``, or no Redis URL, or a malformed
        ``FOOTFALL_TRUSTED_PROXIES`` / ``FOOTFALL_GEOIP_DB``.
    """

    def __init__(
        self,
        asgi_app: ASGIApp,
        settings: Settings | None = None,
        *,
        tracker: AsyncTracker | None = None,
        clock: Callable[[], datetime] | None = None,
        route_resolver: RouteResolver | None = None,
    ) -> None:
        self.app = asgi_app
        self.tracker = tracker or build_async_tracker(settings or Settings.from_env())
        if self.tracker.route_of is None:
            self.tracker.route_of = route_resolver or route_resolver_for(asgi_app)
        self.settings = self.tracker.settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._drain = BackgroundDrain(self.settings) if self.settings.inprocess_drain else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan, websocket: untouched
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        facts = _facts(scope, headers, self.tracker.trusted_proxies)
        if facts.path == self.settings.track_path:
            await self._send_reply(send, await self._track(scope, receive, facts, headers))
            return
        if facts.path == self.settings.script_path:
            reply = endpoint.script(facts.method, headers.get("if-none-match"), self.settings)
            await self._send_reply(send, reply, head=facts.method == "HEAD")
            return
        if self.tracker.classify(facts) != "tracked":
            _publish(scope, None)
            await self.app(scope, receive, send)
            return
        if self._drain is not None:
            self._drain.ensure_started()
        visit = await self.tracker.resolve(facts, site=self.settings.default_site, now=self._clock())
        _publish(scope, visit)
        if visit is None:
            await self.app(scope, receive, send)
            return
        cookies = [(b"set-cookie", v.encode("latin-1")) for v in self.tracker.cookies.set_cookie_headers(visit)]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                if self.settings.server_pageviews and facts.method == "GET":
                    await self._record_server_page_view(message, facts, visit)
                message = {**message, "headers": [*message.get("headers", ()), *cookies]}
            await send(message)

        await self.app(scope, receive, send_with_cookies)

    async def _record_server_page_view(self, message: Message, facts: RequestFacts, visit: Visit) -> None:
        if not 200 <= int(message.get("status", 200)) < 300:
            return
        content_type = next((v for k, v in message.get("headers", ()) if k.lower() == b"content-type"), b"")
        if not content_type.lower().startswith(b"text/html"):
            return
        await self.tracker.queue_page_view(visit, facts, self.tracker.server_page_view(facts))

    async def _track(
        self, scope: Scope, receive: Receive, facts: RequestFacts, headers: dict[str, str]
    ) -> endpoint.Reply:
        """Answer the track endpoint; statuses as in :mod:`footfall.middleware.track_endpoint`."""
        cors = endpoint.opening(facts.method, headers.get("origin"), self.settings)
        if isinstance(cors, endpoint.Reply):
            return cors
        try:
            body = await _read_body(receive, endpoint.body_limit(headers.get("content-length")))
        except InvalidEvent as exc:
            return endpoint.Reply(exc.status, {"error": exc.message}, cors)
        event = endpoint.event_of(body, self.settings, cors, headers.get("sec-gpc"))
        if isinstance(event, endpoint.Reply):
            return event
        if self.tracker.is_crawler(facts.user_agent):
            return endpoint.Reply(200, endpoint.IGNORED_CRAWLER, cors)
        if self._drain is not None:
            self._drain.ensure_started()
        visit = await self.tracker.resolve(endpoint.visit_facts(event, facts, headers.get("origin")),
                                           site=event.site, now=self._clock(),
                                           page_view=self.tracker.page_view_of_event(event))
        _publish(scope, visit)
        if visit is None:
            return endpoint.unavailable(cors)
        return endpoint.recorded(visit, cors, self.tracker.cookies, self.settings)

    @staticmethod
    async def _send_reply(send: Send, reply: endpoint.Reply, *, head: bool = False) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.all_headers()
                   if not (reply.status in (204, 304) and k.lower() == "content-length")]  # RFC 9110 8.6
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else reply.encoded()})

    async def aclose(self) -> None:
        """Stop the background drain (writing what is queued) and close the store clients.

        The drain thread is waited for in a worker thread: it finishes its blocking read and its
        last batch first (a second or more; up to its flush timeout while MongoDB is down), and the
        event loop keeps serving meanwhile.
        """
        if self._drain is not None:
            await asyncio.to_thread(self._drain.stop)
        await self.tracker.aclose()


async def _read_body(receive: Receive, limit: int) -> bytes:
    """Read the track request's body, at most ``limit`` bytes.

    :raises InvalidEvent: 413 when more than 16 KiB arrive (whatever ``Content-Length`` said).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidEvent(f"body is over {MAX_BODY_BYTES} bytes; at most {MAX_BODY_BYTES} are accepted",
                               status=413)
        chunks.append(chunk)
        if not message.get("more_body", False) or size >= limit:
            break
    return b"".join(chunks)[:limit]
