"""The read API: ``GET /analytics/stats`` and ``GET /analytics/health`` (admin token)."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from pymongo.errors import PyMongoError
from redis import RedisError

from footfall.analytics_api import dashboard_auth
from footfall.dashboard_queries import day_range, summarize
from footfall.dashboard_queries.periods import parse_day
from footfall.drain import backlog
from footfall.errors import StoreUnavailable
from footfall.live.counters import REBUILDS_KEY
from footfall.live.rebuild import parse_rebuild_records
from footfall.stores.redis_sessions import COUNTERS_KEY

__all__ = ["blueprint", "require_admin", "state", "SITE_RE"]

blueprint = Blueprint("analytics", __name__, url_prefix="/analytics")

F = TypeVar("F", bound=Callable[..., ResponseReturnValue])
SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


def state() -> Any:
    """The app's :class:`~footfall.analytics_api.app.FootfallState`."""
    return current_app.extensions["footfall"]


def _error(message: str, status: int) -> tuple[Response, int]:
    return jsonify(error=message), status


def require_admin(view: F) -> F:
    """Require ``Authorization: Bearer $FOOTFALL_ADMIN_TOKEN`` (compared in constant time) or, when
    the request has no ``Authorization`` header, a valid dashboard login cookie
    (:mod:`footfall.analytics_api.dashboard_auth`; ``SameSite=Strict``, so no cross-site request
    carries it).

    :raise 401: no bearer token and no valid login cookie (with ``WWW-Authenticate: Bearer``,
        RFC 6750 §3).
    :raise 403: a wrong token, or no ``FOOTFALL_ADMIN_TOKEN`` configured (read endpoints stay shut).
    """

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        header = request.headers.get("Authorization", "")
        settings = state().settings
        if not header and dashboard_auth.is_valid(settings, request.cookies.get(dashboard_auth.COOKIE_NAME)):
            return view(*args, **kwargs)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            body, status = _error(
                "missing admin token: send Authorization: Bearer <FOOTFALL_ADMIN_TOKEN>, "
                "or log in at /analytics/dashboard", 401)
            return body, status, {"WWW-Authenticate": 'Bearer realm="footfall"'}
        expected = settings.admin_token
        if not expected:
            return _error("read endpoints are disabled: FOOTFALL_ADMIN_TOKEN is not configured", 403)
        if not hmac.compare_digest(token.strip().encode(), expected.encode()):
            return _error("wrong admin token", 403)
        return view(*args, **kwargs)

    return cast(F, guarded)


@blueprint.get("/stats")
@require_admin
def stats() -> ResponseReturnValue:
    """Total visits, unique visitors and page views for inclusive UTC days (the dashboard API's
    ``/analytics/api/summary`` has every metric, time zones and filters).

    Query: ``start``, ``end`` (``YYYY-MM-DD``, default today), ``site`` (default: all sites).

    :raise 400: a malformed date or site, or ``end`` before ``start``.
    :raise 401/403: see :func:`require_admin`.
    :raise 503: MongoDB did not answer.
    """
    site = request.args.get("site") or None
    if site is not None and not SITE_RE.match(site):
        return _error(f"site must be 1-100 letters, digits and . _ : -, got {site[:40]!r}", 400)
    try:
        days = day_range(parse_day("start", request.args.get("start")), parse_day("end", request.args.get("end")),
                         datetime.now(UTC).date())
    except ValueError as exc:
        return _error(str(exc), 400)
    try:  # raw collections, as this endpoint always counted (the dashboard API reads rollups)
        counts = summarize(state().db, days.start, days.end, site, rollups=False)
    except StoreUnavailable as exc:
        return _error(str(exc), 503)
    return jsonify(total_visits=counts["total_visits"], unique_visitors=counts["unique_visitors"],
                   page_views=counts["page_views"], start=days.first.isoformat(), end=days.last.isoformat(), site=site)


@blueprint.get("/health")
@require_admin
def health() -> ResponseReturnValue:
    """Store reachability, the drain's backlog and the event counts.

    Answers 200 when both stores answer, else 503, with the same JSON body::

        {"redis": bool, "mongodb": bool,
         "backlog": {"length": int, "lag_seconds": float} | null,
         "events": {"written": int, "failed": int, "dropped": int,
                    "dropped_unreported": int},
         "visitor_numbers": {"assigned": int, "failed": int, "success_rate": float | null},
         "live_counters": {"rebuilt_from_mongodb": {"<site>": {"at", "since", "visits", "page_views",
                                                               "unique_visitors"}}}}

    ``written``, ``failed`` (set aside by the drain) and ``dropped`` (not accepted while Redis was
    down) are totals kept in Redis since its data began; ``dropped_unreported`` are this process's
    drops not yet added there (Redis still down). ``backlog`` is ``null`` when Redis is down.
    ``visitor_numbers``: new visitors numbered, and those that went on without a number (a store
    down); ``success_rate`` = assigned / (assigned + failed), ``null`` before the first.
    ``live_counters.rebuilt_from_mongodb``: the sites whose live counters (``/api/stats``) Redis had
    lost and that were rebuilt once from MongoDB, when, and with what (:mod:`footfall.live.rebuild`:
    their totals then hold what the drain had written by then).
    """
    current = state()
    client = current.tracker.sessions.client
    body: dict[str, Any] = {"redis": False, "mongodb": False, "backlog": None}
    counts: dict[bytes, bytes] = {}
    rebuilds: dict[bytes, bytes] = {}
    try:
        counts = client.hgetall(COUNTERS_KEY)
        rebuilds = client.hgetall(REBUILDS_KEY)
        queued = backlog(client)
        body.update(redis=True, backlog={"length": queued.length, "lag_seconds": round(queued.lag_seconds, 3)})
    except RedisError:
        pass
    try:
        body["mongodb"] = bool(current.db.command("ping").get("ok"))
    except PyMongoError:
        pass
    body["events"] = {
        "written": int(counts.get(b"written", 0)),
        "failed": int(counts.get(b"failed", 0)),
        "dropped": int(counts.get(b"dropped", 0)),
        "dropped_unreported": current.tracker.dropped.unreported,
    }
    assigned = int(counts.get(b"numbers_assigned", 0))
    unnumbered = int(counts.get(b"numbers_failed", 0)) + current.tracker.numbers_failed.unreported
    body["visitor_numbers"] = {
        "assigned": assigned,
        "failed": unnumbered,
        "success_rate": round(assigned / (assigned + unnumbered), 4) if assigned + unnumbered else None,
    }
    body["live_counters"] = {"rebuilt_from_mongodb": parse_rebuild_records(rebuilds)}
    return jsonify(body), 200 if body["redis"] and body["mongodb"] else 503
