"""The dashboard API: ``/analytics/api/*`` (admin token), thin shells around
:mod:`footfall.dashboard_queries`.

Every query endpoint takes ``site`` (default: every site), ``start`` / ``end`` (``YYYY-MM-DD``, local
days, inclusive, default today), ``tz`` (IANA name, default ``FOOTFALL_TIMEZONE``) and ``filters``
(:mod:`~footfall.dashboard_queries.filters`; empty means none). A bad, empty or unknown parameter (but
``filters``, ``tz`` and ``cursor``, where empty means absent) answers 400 ``{"error": "...",
"parameter": "<name>"}``; MongoDB not answering, 503 ``{"error": "..."}``. The whole surface is
described by ``GET /analytics/openapi.json`` (:mod:`footfall.analytics_api.openapi`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from footfall.analytics_api.routes import SITE_RE, require_admin, state
from footfall.dashboard_queries import (
    DIMENSIONS,
    breakdown,
    breakdown_csv,
    list_sessions,
    list_sites,
    parse_filters,
    parse_period,
    summarize,
    timeseries,
)
from footfall.dashboard_queries.filters import Clause
from footfall.dashboard_queries.periods import COMPARES, Period
from footfall.errors import InvalidQuery, StoreUnavailable

__all__ = ["api_blueprint"]

api_blueprint = Blueprint("analytics_dashboard", __name__, url_prefix="/analytics/api")


@api_blueprint.errorhandler(InvalidQuery)
def _invalid(exc: InvalidQuery) -> ResponseReturnValue:
    return jsonify(error=exc.message, parameter=exc.parameter), 400


@api_blueprint.errorhandler(StoreUnavailable)
def _unavailable(exc: StoreUnavailable) -> ResponseReturnValue:
    return jsonify(error=str(exc)), 503


def _site() -> str | None:
    site = request.args.get("site")
    if site is not None and not SITE_RE.match(site):
        raise InvalidQuery("site", f"site must be 1-100 letters, digits and . _ : -, got {site[:40]!r}")
    return site


SCOPE = ("site", "start", "end", "tz", "filters")


def _known(*names: str) -> None:
    """Refuse a parameter the endpoint does not take (a typo such as ``filter=`` would otherwise be
    ignored silently and answer unfiltered numbers).

    :raises InvalidQuery: naming the first unknown parameter.
    """
    for name in request.args:
        if name not in names:
            raise InvalidQuery(name, f"unknown parameter {name[:40]!r}; this endpoint takes "
                                     f"{', '.join(names) or 'no parameter'}")


def _scope(*extra: str) -> tuple[str | None, Period, tuple[Clause, ...]]:
    """``site``, the period from ``start`` / ``end`` / ``tz``, and the parsed ``filters``; refuses any
    parameter other than those and ``extra``."""
    _known(*SCOPE, *extra)
    args = request.args
    for name in ("start", "end"):
        if args.get(name) == "":
            raise InvalidQuery(name, f"{name} must be a date YYYY-MM-DD, got ''; leave it out for today")
    days = parse_period(args.get("start"), args.get("end"), args.get("tz"), datetime.now(UTC),
                        state().settings.timezone)
    return _site(), days, parse_filters(args.get("filters"))


def _integer(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw, 10) if raw.isascii() else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise InvalidQuery(name, f"{name} must be a whole number from {low} to {high}, got {raw[:40]!r}")
    return value


def _choice(name: str, default: str | None, choices: tuple[str, ...]) -> str:
    raw = request.args.get(name, default)
    if raw is None:
        raise InvalidQuery(name, f"{name} is required: one of {', '.join(choices)}")
    if raw not in choices:
        raise InvalidQuery(name, f"{name} must be one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw


def _range(site: str | None, days: Period) -> dict[str, Any]:
    return {"site": site, "start": days.first.isoformat(), "end": days.last.isoformat(), "tz": days.tz.key}


@api_blueprint.get("/summary")
@require_admin
def summary() -> ResponseReturnValue:
    """The summary and its comparison: ``compare=previous_period`` (default), ``year_over_year`` or
    ``none``.

    Answers ``{"total_visits", "unique_visitors", "page_views", "views_per_visit", "bounce_rate",
    "visit_duration", "new_visits", "returning_visits", "previous": {same keys} | null, "change":
    {same keys: percent | null} | null, "site", "start", "end", "tz", "compare", "previous_start",
    "previous_end"}``.

    :raise 400: a bad site, start, end, tz, filters or compare. :raise 401/403: see
        :func:`~footfall.analytics_api.routes.require_admin`. :raise 503: MongoDB did not answer.
    """
    site, days, clauses = _scope("compare")
    compare = _choice("compare", "previous_period", (*COMPARES, "none"))
    before = None if compare == "none" else days.previous(compare)
    result = summarize(state().db, days.start, days.end, site, filters=clauses,
                       previous=(before.start, before.end) if before else None)
    result.setdefault("previous", None)
    result.setdefault("change", None)
    return jsonify(**result, **_range(site, days), compare=compare,
                   previous_start=before.first.isoformat() if before else None,
                   previous_end=before.last.isoformat() if before else None)


@api_blueprint.get("/timeseries")
@require_admin
def timeseries_view() -> ResponseReturnValue:
    """One metric per bucket: ``metric`` (``visits`` default, ``unique_visitors``, ``page_views``,
    ``bounce_rate``, ``visit_duration``), ``interval`` (``hour``, ``day`` default, ``week``, ``month``).

    Answers ``{"metric", "interval", "tz", "site", "start", "end", "points": [{"bucket", "value"}]}``,
    every bucket present.

    :raise 400: a bad parameter, or more than 10000 buckets. :raise 401/403. :raise 503.
    """
    site, days, clauses = _scope("metric", "interval")
    metric = _choice("metric", "visits", ("visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"))
    interval = _choice("interval", "day", ("hour", "day", "week", "month"))
    result = timeseries(state().db, days, metric, interval, site, filters=clauses)
    return jsonify(**result, **{k: v for k, v in _range(site, days).items() if k != "tz"})


@api_blueprint.get("/breakdown")
@require_admin
def breakdown_view() -> ResponseReturnValue:
    """Metrics per value of ``dimension`` (required), ``limit`` (1..1000, default 10) rows of page
    ``page`` (default 1).

    Answers ``{"dimension", "results": [{"value", "total_visits", "unique_visitors", "page_views",
    "bounce_rate", "visit_duration"(, "events")}], "page", "limit", "total", "site", "start", "end", "tz"}``.

    :raise 400: a bad parameter. :raise 401/403. :raise 503.
    """
    site, days, clauses = _scope("dimension", "limit", "page")
    dimension = _choice("dimension", None, tuple(DIMENSIONS))
    result = breakdown(state().db, days.start, days.end, dimension, site, filters=clauses,
                       limit=_integer("limit", 10, 1, 1000), page=_integer("page", 1, 1, 1_000_000))
    return jsonify(**result, **_range(site, days))


@api_blueprint.get("/export")
@require_admin
def export() -> ResponseReturnValue:
    """Every row of a breakdown as a CSV download: ``dimension`` (required), ``format=csv`` (default).

    :raise 400: a bad parameter. :raise 401/403. :raise 503.
    """
    site, days, clauses = _scope("dimension", "format")
    dimension = _choice("dimension", None, tuple(DIMENSIONS))
    _choice("format", "csv", ("csv",))
    text = breakdown_csv(breakdown(state().db, days.start, days.end, dimension, site, filters=clauses, limit=None))
    name = f"footfall-{site or 'all-sites'}-{dimension}-{days.first}-{days.last}.csv"
    return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})


@api_blueprint.get("/sessions")
@require_admin
def sessions() -> ResponseReturnValue:
    """Raw sessions started in the range, oldest first, ``limit`` (1..1000, default 100) per page;
    pass the answer's ``next_cursor`` as ``cursor`` for the next page.

    Answers ``{"sessions": [...], "next_cursor": str | null, "site", "start", "end", "tz"}``.

    :raise 400: a bad parameter or cursor. :raise 401/403. :raise 503.
    """
    site, days, clauses = _scope("limit", "cursor")
    result = list_sessions(state().db, days.start, days.end, site, filters=clauses,
                           limit=_integer("limit", 100, 1, 1000), cursor=request.args.get("cursor") or None)
    return jsonify(**result, **_range(site, days))


@api_blueprint.get("/sites")
@require_admin
def sites() -> ResponseReturnValue:
    """The sites with data, for a site picker: ``{"sites": [name, ...]}`` (sorted).

    :raise 401/403. :raise 503.
    """
    _known()
    return jsonify(sites=list_sites(state().db))
