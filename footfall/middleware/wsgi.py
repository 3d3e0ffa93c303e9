"""The WSGI adapter: ``app.wsgi_app = FootfallMiddleware(app.wsgi_app)``.

It wraps ``start_response`` to add ``Set-Cookie`` headers (as Werkzeug's ``ProxyFix`` wraps
``environ``), publishes the decision at ``environ["footfall.visit"]``, and answers
``POST /analytics/track`` and its CORS preflight, and ``GET /analytics/footfall.js`` (the tracker
script), itself, so the wrapped app needs no route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from footfall.errors import InvalidEvent
from footfall.geo import client_ip
from footfall.middleware import track_endpoint as endpoint
from footfall.middleware.background import BackgroundDrain
from footfall.middleware.core import Visit
from footfall.middleware.route_templates import RouteResolver, route_resolver_for
from footfall.middleware.tracker import RequestFacts, Tracker, host_of
from footfall.settings import Settings

__all__ = ["FootfallMiddleware", "ENVIRON_KEY"]

log = logging.getLogger("footfall.middleware")

ENVIRON_KEY = "footfall.visit"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _facts(environ: dict[str, Any], trusted_proxies: tuple[Any, ...]) -> RequestFacts:
    return RequestFacts(
        method=environ.get("REQUEST_METHOD", "GET").upper(),
        path=environ.get("PATH_INFO", "") or "/",
        query=environ.get("QUERY_STRING", ""),
        user_agent=environ.get("HTTP_USER_AGENT"),
        cookie_header=environ.get("HTTP_COOKIE"),
        referrer=environ.get("HTTP_REFERER", ""),
        host=host_of(environ.get("HTTP_HOST") or environ.get("SERVER_NAME")),
        client_ip=client_ip(environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), trusted_proxies),
    )


class FootfallMiddleware:
    """Session-tracking WSGI middleware.

    For every request that is not excluded (``OPTIONS``/``HEAD``, ``FOOTFALL_EXCLUDE_PATHS``) and
    not from a crawler, it decides one of the three cases of the design seed
    (``shared/seeds/002_5b98de07f6724198.txt``), sets the cookies, keeps the active session in Redis
    and queues visits and page views on a Redis Stream, all in one Redis round trip; a drain writes
    them to MongoDB (see :mod:`footfall.drain`). When Redis is down it fails open: the wrapped app
    answers as usual, the loss is logged and counted.

    With ``FOOTFALL_INPROCESS_DRAIN=true`` (the default) the first tracked request of each process
    starts a background drain thread, so two lines are all a wrapped app needs; ``footfall serve``
    runs its own drain process instead, and ``footfall drain`` runs one on its own.

    :param wsgi_app: the WSGI application to wrap.
    :param settings: footfall's settings; read from ``FOOTFALL_*`` variables when ``None``.
    :param tracker: a ready :class:`Tracker` (tests, or sharing one between apps); built from
        ``settings`` when ``None``.
    :param clock: returns the current UTC datetime (tests pass a simulated clock).
    :param route_resolver: ``resolver(path) -> route template or None`` for the ``route`` of page
        views; found in the wrapped app when ``None`` (Flask: its ``url_map``, also through a bound
        ``app.wsgi_app``; see :mod:`footfall.middleware.route_templates`).
    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY``, or no Redis/MongoDB URL, or a malformed
        ``FOOTFALL_TRUSTED_PROXIES`` / ``FOOTFALL_GEOIP_DB``.
    """

    def __init__(
        self,
        wsgi_app: WSGIApp,
        settings: Settings | None = None,
        *,
        tracker: Tracker | None = None,
        clock: Callable[[], datetime] | None = None,
        route_resolver: RouteResolver | None = None,
    ) -> None:
        self.wsgi_app = wsgi_app
        if tracker is None:
            from footfall.stores import build_tracker

            tracker = build_tracker(settings or Settings.from_env())
        self.tracker = tracker
        if tracker.route_of is None:
            tracker.route_of = route_resolver or route_resolver_for(wsgi_app)
        self.settings = tracker.settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._drain: BackgroundDrain | None = None
        if self.settings.inprocess_drain:
            self._drain = BackgroundDrain(self.settings)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        facts = _facts(environ, self.tracker.trusted_proxies)
        if facts.path == self.settings.track_path:
            return self._track(environ, facts)(environ, start_response)
        if facts.path == self.settings.script_path:  # (Werkzeug's Response sends no body to a HEAD)
            reply = endpoint.script(facts.method, environ.get("HTTP_IF_NONE_MATCH"), self.settings)
            return _response(reply)(environ, start_response)
        if self.tracker.classify(facts) != "tracked":
            environ[ENVIRON_KEY] = None
            return self.wsgi_app(environ, start_response)

        if self._drain is not None:
            self._drain.ensure_started()
        now = self._clock()
        visit = self.tracker.resolve(facts, site=self.settings.default_site, now=now)
        environ[ENVIRON_KEY] = visit
        if visit is None:
            return self.wsgi_app(environ, start_response)
        cookie_headers = [("Set-Cookie", value) for value in self.tracker.cookies.set_cookie_headers(visit)]

        def tracking_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if self.settings.server_pageviews and facts.method == "GET":
                self._record_server_page_view(status, headers, facts, visit)
            return start_response(status, list(headers) + cookie_headers, exc_info)

        return self.wsgi_app(environ, tracking_start_response)

    def close(self) -> None:
        """Stop the background drain (writing what is queued) and close the store clients."""
        if self._drain is not None:
            self._drain.stop()
        self.tracker.close()

    def _record_server_page_view(
        self, status: str, headers: list[tuple[str, str]], facts: RequestFacts, visit: Visit
    ) -> None:
        if not status.startswith("2"):
            return
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if not content_type.lower().startswith("text/html"):
            return
        self.tracker.queue_page_view(visit, facts, self.tracker.server_page_view(facts))

    def _track(self, environ: dict[str, Any], facts: RequestFacts) -> Response:
        """Answer the track endpoint; statuses as in :mod:`footfall.middleware.track_endpoint`."""
        return _response(self._track_reply(environ, facts))

    def _track_reply(self, environ: dict[str, Any], facts: RequestFacts) -> endpoint.Reply:
        cors = endpoint.opening(facts.method, environ.get("HTTP_ORIGIN"), self.settings)
        if isinstance(cors, endpoint.Reply):
            return cors
        try:
            limit = endpoint.body_limit(environ.get("CONTENT_LENGTH"))
        except InvalidEvent as exc:
            return endpoint.Reply(exc.status, {"error": exc.message}, cors)
        body = b""
        if environ.get("CONTENT_LENGTH") or environ.get("wsgi.input_terminated"):
            body = bytes(environ["wsgi.input"].read(limit))
        event = endpoint.event_of(body, self.settings, cors, environ.get("HTTP_SEC_GPC"))
        if isinstance(event, endpoint.Reply):
            return event
        if self.tracker.is_crawler(facts.user_agent):
            return endpoint.Reply(200, endpoint.IGNORED_CRAWLER, cors)
        if self._drain is not None:
            self._drain.ensure_started()
        visit = self.tracker.resolve(endpoint.visit_facts(event, facts, environ.get("HTTP_ORIGIN")),
                                     site=event.site, now=self._clock(),
                                     page_view=self.tracker.page_view_of_event(event))
        environ[ENVIRON_KEY] = visit
        if visit is None:
            return endpoint.unavailable(cors)
        return endpoint.recorded(visit, cors, self.tracker.cookies, self.settings)


def _response(reply: endpoint.Reply) -> Response:
    if reply.body is None and reply.content is None:  # a 204 or a 304: no body, so no Content-Type
        response = Response(status=reply.status, headers=reply.headers)  # (Werkzeug would add text/plain)
        response.headers.remove("Content-Type")
        return response
    return Response(reply.encoded(), status=reply.status, headers=reply.headers,
                    mimetype=None if reply.content is not None else "application/json")  # (the script's: in headers)
