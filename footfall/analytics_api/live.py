"""The live numbers' HTTP API on the Flask app: ``GET /api/stats`` and ``POST /api/visitor/register``.

Both answer from the live counters (:mod:`footfall.live`), never from a scan: O(1) in the number of
stored sessions. The push endpoints, ``GET /analytics/live`` (Server-Sent Events) and
``/analytics/ws`` (WebSocket), are native asyncio endpoints of footfall's ASGI app
(:mod:`footfall.live.app`, what ``footfall serve`` runs); the Flask app alone, under a threaded WSGI
server (``gunicorn wsgi:app``), answers them 501 with a pointer to that app and to polling
``/api/stats``: one open stream would hold one of its few threads for as long as the dashboard is open.

Who may read (``/api/stats``, the stats in a register answer, the live streams): anyone when
``FOOTFALL_PUBLIC_STATS=true``, else the same rule as every read endpoint,
:func:`~footfall.analytics_api.routes.require_admin`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, make_response, request
from flask.typing import ResponseReturnValue

from footfall.analytics_api.routes import SITE_RE, require_admin, state
from footfall.errors import InvalidEvent, StoreUnavailable
from footfall.events import MAX_BODY_BYTES
from footfall.geo import client_ip
from footfall.live.counters import build_stats
from footfall.live.register import page_of_referer, parse_register_body
from footfall.live.store import LiveStore
from footfall.middleware.cors import cors_headers, preflight_headers
from footfall.middleware.track_endpoint import IGNORED_CRAWLER
from footfall.middleware.tracker import RequestFacts, host_of, page_view_fields

__all__ = ["live_blueprint", "LiveState", "LIVE_EXTENSION_KEY", "stats_denial", "DASHBOARD_STATS_PATH",
           "LIVE_STREAMS_CONFIG"]

LIVE_EXTENSION_KEY = "footfall.live"
# /api/stats where the dashboard's login cookie reaches it; not under /analytics/api/, whose endpoints
# refuse an empty or unknown parameter where /api/stats takes an empty site as the default one
DASHBOARD_STATS_PATH = "/analytics/live/stats"
# Flask config key, True when the app runs inside footfall's ASGI app (footfall.live.app), which serves
# the streams; the dashboard page then opens one, else it polls (the Flask app alone answers them 501).
LIVE_STREAMS_CONFIG = "FOOTFALL_LIVE_STREAMS"

live_blueprint = Blueprint("analytics_live", __name__)


@dataclass(frozen=True)
class LiveState:
    """What the live endpoints need, kept at ``app.extensions["footfall.live"]``.

    :ivar store: the live counters' reader.
    :ivar clock: returns the current UTC datetime (tests pass a simulated clock).
    """

    store: LiveStore
    clock: Callable[[], datetime]

    def close(self) -> None:
        """Close the store's Redis connections."""
        self.store.close()


def _live() -> LiveState:
    return cast(LiveState, current_app.extensions[LIVE_EXTENSION_KEY])


def _allowed() -> None:
    return None


def stats_denial() -> ResponseReturnValue | None:
    """``None`` when the current request may read live stats, else the 401/403 answer to send:
    anyone with ``FOOTFALL_PUBLIC_STATS=true``, else :func:`~footfall.analytics_api.routes.require_admin`'s
    rule, whatever it accepts (the bearer token, the dashboard's cookie)."""
    if state().settings.public_stats:
        return None
    guarded = require_admin(cast(Callable[..., ResponseReturnValue], _allowed))
    return cast(ResponseReturnValue | None, guarded())


def _json(body: dict[str, Any], status: int, headers: list[tuple[str, str]]) -> Response:
    response = jsonify(body)
    response.status_code = status
    return _with_headers(response, headers)


def _with_headers(response: Response, headers: list[tuple[str, str]]) -> Response:
    """``response`` with ``headers`` added and ``Cache-Control: no-store`` (live numbers are never cached)."""
    for name, value in headers:
        response.headers.add(name, value)
    response.headers["Cache-Control"] = "no-store"
    return response


def _site(raw: Any, default: str) -> str:
    """The site named by the query or body, or ``default``.

    :raises InvalidEvent: a malformed site (400).
    """
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or not SITE_RE.match(raw):
        raise InvalidEvent(f"site must be 1-100 letters, digits and . _ : -, got {str(raw)[:40]!r}")
    return raw


def _preflight(methods: str, allow_headers: str) -> Response:
    settings = state().settings
    allowed = preflight_headers(request.headers.get("Origin"), settings.cors_origins, methods=methods,
                                headers=allow_headers)
    if allowed is None:
        return _json({"error": f"origin {request.headers.get('Origin')!r} is not in FOOTFALL_CORS_ORIGINS"}, 403,
                     [("Vary", "Origin")])
    response = Response(status=204, headers=allowed)
    response.headers.remove("Content-Type")
    return response


@live_blueprint.route("/api/stats", methods=["GET", "OPTIONS"])
@live_blueprint.route(DASHBOARD_STATS_PATH, methods=["GET", "OPTIONS"])
def api_stats() -> ResponseReturnValue:
    """A site's live numbers::

        {"totalVisits", "todayVisits", "uniqueVisitors", "todayUniqueVisitors", "activeUsers",
         "pageViews", "locations": {"<country name>, <CC>": {"count": n}}, "lastUpdated"}

    (see :func:`~footfall.live.counters.build_stats`). Query: ``site`` (default
    ``FOOTFALL_DEFAULT_SITE``). CORS for ``FOOTFALL_CORS_ORIGINS``, credentials included.

    Also answered at :data:`DASHBOARD_STATS_PATH` (``/analytics/live/stats``), the same endpoint under
    ``/analytics``: the dashboard's login cookie has ``Path=/analytics`` (RFC 6265 §5.4: a browser
    sends it only to paths under that), so ``/api/stats`` never receives it from the dashboard page.

    :raise 400: a malformed ``site``.
    :raise 401/403: not public and no admin credentials (see :func:`stats_denial`).
    :raise 503: Redis did not answer, or the counters needed their one rebuild and MongoDB did not.
    """
    if request.method == "OPTIONS":
        return _preflight("GET, OPTIONS", "Authorization")
    settings = state().settings
    cors = cors_headers(request.headers.get("Origin"), settings.cors_origins)
    denial = stats_denial()
    if denial is not None:
        return _with_headers(make_response(denial), cors)
    try:
        site = _site(request.args.get("site"), settings.default_site)
    except InvalidEvent as exc:
        return _json({"error": exc.message}, 400, cors)
    live = _live()
    now = live.clock()
    try:
        snapshot = live.store.snapshot(site, now)
    except StoreUnavailable as exc:
        return _json({"error": str(exc)}, 503, cors)
    return _json(build_stats(snapshot, now=now), 200, cors)


@live_blueprint.route("/api/visitor/register", methods=["POST", "OPTIONS"])
def register_visitor() -> ResponseReturnValue:
    """Record a page view like ``POST /analytics/track`` (see :mod:`footfall.live.register` for the
    body and what is recorded) and answer ``{"success": true, "stats": {…}}`` with the numbers
    after it; ``stats`` is ``null`` when the caller may not read stats (:func:`stats_denial`) or
    the counters cannot be read. A crawler's register answers ``{"success": false, "ignored": …}``
    and counts nowhere. Sets footfall's cookies; CORS like ``/analytics/track``. Query: ``site``
    (default ``FOOTFALL_DEFAULT_SITE``).

    :raise 400: a body that is not the seed's shape (the message names the field), a malformed site.
    :raise 403: a preflight from an origin not in ``FOOTFALL_CORS_ORIGINS``.
    :raise 413: a body over 16 KiB.
    :raise 503: Redis did not take the page view (counted as dropped).
    """
    if request.method == "OPTIONS":
        return _preflight("POST, OPTIONS", "Content-Type")
    current = state()
    settings = current.settings
    cors = cors_headers(request.headers.get("Origin"), settings.cors_origins)
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _json({"error": f"body is {request.content_length} bytes; at most {MAX_BODY_BYTES} are accepted"},
                     413, cors)
    try:
        raw = request.get_data(cache=False)
        body = parse_register_body(raw)
        site = _site(request.args.get("site"), settings.default_site)
    except InvalidEvent as exc:
        return _json({"error": exc.message}, exc.status, cors)
    live = _live()
    now = live.clock()
    tracker = current.tracker
    user_agent = request.headers.get("User-Agent")
    if tracker.is_crawler(user_agent):
        return _json({"success": False, "ignored": IGNORED_CRAWLER["reason"], "stats": _stats_or_none(site, now)},
                     200, cors)
    path = page_of_referer(request.headers.get("Referer"))
    facts = RequestFacts("POST", path, "", user_agent, request.headers.get("Cookie"), body.referrer,
                         host=host_of(request.headers.get("Host"), request.headers.get("Origin")),
                         client_ip=client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                             tracker.trusted_proxies))
    view = page_view_fields(site=site, path=path, query="", referrer=body.referrer, title="", event_id=None)
    visit = tracker.resolve(facts, site=site, now=now, page_view=view)
    request.environ["footfall.visit"] = visit
    if visit is None:
        return _json({"error": "event store unavailable; visit not recorded, retry later"}, 503, cors)
    cookies = [("Set-Cookie", value) for value in tracker.cookies.set_cookie_headers(visit)]
    return _json({"success": True, "stats": _stats_or_none(site, now)}, 200, [*cors, *cookies])


def _stats_or_none(site: str, now: datetime) -> dict[str, Any] | None:
    if stats_denial() is not None:
        return None
    try:
        return build_stats(_live().store.snapshot(site, now), now=now)
    except StoreUnavailable:
        return None


@live_blueprint.get("/analytics/live")
@live_blueprint.get("/analytics/ws")
def live_needs_asgi() -> ResponseReturnValue:
    """The live streams need footfall's ASGI app: answer 501 under a plain WSGI server.

    :raise 501: always, naming what to run instead.
    """
    return _json({"error": "live streams need footfall's ASGI server (`footfall serve`, or "
                           "`uvicorn asgi:app`); under a WSGI server poll GET /api/stats instead"}, 501, [])
