"""Breakdowns: the visits, visitors, page views, bounce rate and visit duration per value of a dimension.

For each value (definitions as in :mod:`~footfall.dashboard_queries.summary`, within the range):

- visit-level dimensions (``entry_page``, ``exit_page``, ``referrer``, ``source``, ``utm_*``,
  ``country``, ``device``, ``browser``, ``os``): the visits started in the range with that value,
  their distinct visitors, bounce rate and mean duration, and the page views (``ts`` in the range) of
  visits with that value;
- ``page`` / ``route``: the visits that viewed the page (``paths`` / ``routes``) and their metrics;
  page views are the views of that page (their own ``path`` / ``route``); sorted by page views;
- ``event``: the visits with the custom event (``event_names``), the page views of those visits, and
  ``events``, the number of custom events of that name (``custom_events``, ``ts`` in the range).

A page-level filter on the dimension broken down also applies to each value (``page==/a`` broken down
by page shows ``/a`` only, not the other pages of the visits that viewed ``/a``). A missing value shows
as ``Direct / None`` (``referrer``, ``source``) or ``(none)``. Rows are sorted by unique visitors (page
views for ``page``), then by value, and paginated. One round trip on ``sessions``, with the page views
(and custom events) by ``$unionWith``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo.database import Database

from footfall.dashboard_queries import from_rollups
from footfall.dashboard_queries.filters import DIMENSIONS, Clause, as_clauses, label_of, value_condition
from footfall.dashboard_queries.pipeline import Query, filter_stages, run, time_match, views_pipeline, visit_facts
from footfall.errors import InvalidQuery
from footfall.stores.documents import CUSTOM_EVENTS, PAGE_VIEWS, SESSIONS

__all__ = ["breakdown", "breakdown_query", "check_dimension", "MAX_LIMIT"]

MAX_LIMIT = 1000
SUMS = ("visits", "visitors", "page_views", "bounces", "duration_ms", "events")


def check_dimension(dimension: str) -> str:
    """:raises InvalidQuery: (parameter ``dimension``) not one of the known dimensions."""
    if dimension not in DIMENSIONS:
        raise InvalidQuery("dimension",
                           f"dimension must be one of {', '.join(DIMENSIONS)}, got {str(dimension)[:40]!r}")
    return dimension


def _value(dimension: str, prefix: str = "") -> Any:
    if dimension == "source":
        return {"$ifNull": [f"${prefix}utm_source", {"$ifNull": [f"${prefix}referrer_host", None]}]}
    return {"$ifNull": [f"${prefix}{DIMENSIONS[dimension].session_field}", None]}


def _unwind(field: str, dimension: str, clauses: Sequence[Clause]) -> list[dict[str, Any]]:
    """Unwind a page-level array and keep the elements the clauses on that dimension allow."""
    own = [value_condition(c, field) for c in clauses if c.dimension == dimension]
    return [{"$unwind": f"${field}"}, *([{"$match": {"$and": own}}] if own else [])]


def _visits(start: datetime, end: datetime, dimension: str, site: str | None,
            clauses: Sequence[Clause]) -> list[dict[str, Any]]:
    spec = DIMENSIONS[dimension]
    stages = [time_match("started_at", start, end, site), *filter_stages(clauses)]
    if spec.page_level:
        stages += _unwind(spec.session_field, dimension, clauses)
    return stages + [
        {"$project": {**visit_facts(), "value": _value(dimension)}},
        {"$group": {"_id": {"value": "$value", "visitor": "$visitor_id"}, "visits": {"$sum": 1},
                    "bounces": {"$sum": "$bounce"}, "duration_ms": {"$sum": "$duration_ms"}}},
        {"$group": {"_id": "$_id.value", "visits": {"$sum": "$visits"}, "visitors": {"$sum": 1},
                    "bounces": {"$sum": "$bounces"}, "duration_ms": {"$sum": "$duration_ms"}}},
    ]


def _page_views(start: datetime, end: datetime, dimension: str, site: str | None,
                clauses: Sequence[Clause]) -> list[dict[str, Any]]:
    spec = DIMENSIONS[dimension]
    if spec.view_field:  # page, route: the view's own value
        stages, value = views_pipeline(start, end, site, clauses), f"${spec.view_field}"
    elif dimension == "event":
        stages = [*views_pipeline(start, end, site, clauses, join=True),
                  *_unwind("visit.event_names", dimension, clauses)]
        value = "$visit.event_names"
    else:
        stages, value = views_pipeline(start, end, site, clauses, join=True), _value(dimension, "visit.")
    return [*stages, {"$group": {"_id": {"$ifNull": [value, None]}, "page_views": {"$sum": 1}}}]


def _events(start: datetime, end: datetime, site: str | None, clauses: Sequence[Clause]) -> list[dict[str, Any]]:
    stages = [time_match("ts", start, end, site)]
    if own := [value_condition(c, "name") for c in clauses if c.dimension == "event"]:
        stages.append({"$match": {"$and": own}})
    if clauses:
        stages += [{"$lookup": {"from": SESSIONS, "localField": "session_id", "foreignField": "_id",
                                "pipeline": [{"$project": {"event_ids": 0, "user_agent": 0}}], "as": "visit"}},
                   {"$unwind": "$visit"}, *filter_stages(clauses, "visit.")]
    return [*stages, {"$group": {"_id": "$name", "events": {"$sum": 1}}}]


def breakdown_query(start: datetime, end: datetime, dimension: str, site: str | None = None,
                    clauses: Sequence[Clause] = (), limit: int | None = 10, page: int = 1) -> Query:
    """The breakdown aggregation (pure).

    :param start: inclusive lower bound (UTC datetime); :param end: exclusive upper bound.
    :param dimension: one of :data:`~footfall.dashboard_queries.filters.DIMENSIONS`.
    :param site: one site, or ``None`` for every site. :param clauses: filter clauses.
    :param limit: rows per page, or ``None`` for every row (CSV export); :param page: 1-based.
    :return: a :class:`Query` on ``sessions`` yielding, with a ``limit``, one document
        ``{"total": [{"n"}], "rows": [...]}``; without, the rows; each row
        ``{"_id": value, "visits", "visitors", "page_views", "bounces", "duration_ms", "events"}``.
    :raises InvalidQuery: an unknown dimension.
    """
    check_dimension(dimension)
    stages = _visits(start, end, dimension, site, clauses)
    stages.append({"$unionWith": {"coll": PAGE_VIEWS, "pipeline": _page_views(start, end, dimension, site, clauses)}})
    if dimension == "event":
        stages.append({"$unionWith": {"coll": CUSTOM_EVENTS, "pipeline": _events(start, end, site, clauses)}})
    order = {"page_views": -1, "visitors": -1} if dimension == "page" else {"visitors": -1, "page_views": -1}
    stages += [
        {"$group": {"_id": "$_id", **{k: {"$sum": f"${k}"} for k in SUMS}}},
        {"$sort": {**order, "_id": 1}},
    ]
    if limit is not None:
        stages.append({"$facet": {"total": [{"$count": "n"}],
                                  "rows": [{"$skip": (page - 1) * limit}, {"$limit": limit}]}})
    return Query(SESSIONS, stages)


def row_of(dimension: str, row: dict[str, Any]) -> dict[str, Any]:
    """A breakdown row from the sums of one value (see :func:`breakdown`)."""
    visits = int(row.get("visits", 0))
    result = {
        "value": label_of(dimension, row["_id"]),
        "total_visits": visits,
        "unique_visitors": int(row.get("visitors", 0)),
        "page_views": int(row.get("page_views", 0)),
        "bounce_rate": round(row.get("bounces", 0) / visits, 4) if visits else 0,
        "visit_duration": round(row.get("duration_ms", 0) / 1000 / visits) if visits else 0,
    }
    if dimension == "event":
        result["events"] = int(row.get("events", 0))
    return result


def check_page(limit: int | None, page: int) -> None:
    """:raises InvalidQuery: (``limit`` / ``page``) a limit outside 1..:data:`MAX_LIMIT` or a page < 1."""
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery("limit", f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    if not 1 <= page <= 1_000_000:
        raise InvalidQuery("page", f"page must be between 1 and 1000000, got {page}")


def breakdown(db: Database, start: datetime, end: datetime, dimension: str, site: str | None = None, *,
              filters: str | Iterable[Clause] | None = None, limit: int | None = 10, page: int = 1,
              rollups: bool = True) -> dict[str, Any]:
    """The breakdown, from the rollups for one site without filter on whole-hour edges
    (:mod:`~footfall.dashboard_queries.from_rollups`), else by :func:`breakdown_query` (one round trip).

    :param db: the footfall database.
    :param start: inclusive lower bound (UTC datetime); :param end: exclusive upper bound.
    :param dimension: ``page``, ``entry_page``, ``exit_page``, ``route``, ``referrer``, ``source``,
        ``utm_source``, ``utm_medium``, ``utm_campaign``, ``country``, ``device``, ``browser``, ``os``
        or ``event``.
    :param site: one site, or ``None`` for every site. :param filters: the grammar's text or clauses.
    :param limit: rows per page (1..1000), ``None`` for every row; :param page: 1-based page.
    :param rollups: allow the rollups (the same answer; ``False`` forces the raw path).
    :return: ``{"source": "rollups" | "raw", "dimension": str, "results": [{"value": str, "total_visits": int,
        "unique_visitors":
        int, "page_views": int, "bounce_rate": float (0..1), "visit_duration": int (seconds)}
        (+ "events": int for ``event``), ...], "page": int, "limit": int | None, "total": int}``,
        ``total`` being the number of values (rows over all pages).
    :raises InvalidQuery: a bad dimension, limit, page or filters.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    clauses = as_clauses(filters)
    check_page(limit, page)
    check_dimension(dimension)
    sel = from_rollups.select(db, site, clauses, start, end, breakdown=True) if rollups else None
    if sel is not None:
        sel.kind = dimension
        try:
            tallies = from_rollups.range_tallies(sel, start, end)
            first = from_rollups.top_tallies(tallies, dimension == "page", None if limit is None else page * limit)
            rows = [_sums(value, tally) for value, tally in first[(page - 1) * (limit or 0):]]
            total = len(tallies)
        except from_rollups.Unanswerable:
            sel = None
    if sel is None:
        docs = run(db, breakdown_query(start, end, dimension, site, clauses, limit, page))
        if limit is None:
            rows, total = docs, len(docs)
        else:
            facet = docs[0] if docs else {}
            rows, total = facet.get("rows", []), (facet.get("total") or [{"n": 0}])[0]["n"]
    return {"source": "raw" if sel is None else "rollups", "dimension": dimension,
            "results": [row_of(dimension, row) for row in rows], "page": page, "limit": limit, "total": int(total)}


def _sums(value: Any, tally: from_rollups.Tally) -> dict[str, Any]:
    """A value's rollup tally as the sums :func:`row_of` reads (the raw query's row shape)."""
    return {"_id": value, "visits": tally.visits, "visitors": tally.unique_visitors(),
            "page_views": tally.page_views, "bounces": tally.bounces, "duration_ms": tally.duration_ms,
            "events": tally.events}
