"""The summary: visits, unique visitors, page views, views per visit, bounce rate, visit duration,
new and returning visits, for a range and, optionally, the period it is compared with.

Definitions (docs/data-model.md, "Definitions"; issue 6), for a site and instants ``[start, end)``:

- **total visits** = sessions whose ``started_at`` is in the range;
- **unique visitors** = distinct ``visitor_id`` among those sessions, over the whole range (a
  visitor seen on three days counts once);
- **page views** = ``page_views`` whose ``ts`` is in the range; **views per visit** = page views /
  visits;
- **bounce rate** = share of the visits with exactly one page view and no custom event (0..1);
- **visit duration** = mean of ``last_seen_at - started_at`` in seconds, a bounce counting 0;
- **new visits** = visits whose visitor's ``first_seen_at`` (``visitors``) is at or after ``start``
  (or who has no ``visitors`` document); **returning visits** = the rest.

Two paths give the same numbers. The rollups (:mod:`~footfall.dashboard_queries.from_rollups`) answer
one site, unfiltered or filtered by one ``dimension==value``, on whole-hour edges: the cost grows with
the days and hours of the range, not with its visits. Otherwise one aggregation round trip on the raw
``sessions``: the visits of the range (and of the previous period, by ``$unionWith``), grouped per
visitor, joined with ``visitors`` by ``_id``, and the page views by ``$unionWith`` from ``page_views``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo.database import Database

from footfall.dashboard_queries import from_rollups
from footfall.dashboard_queries.filters import Clause, as_clauses
from footfall.dashboard_queries.periods import DayRange, day_range
from footfall.dashboard_queries.pipeline import (
    Query,
    filter_stages,
    run,
    time_match,
    views_pipeline,
    visit_facts,
    visit_metrics,
)
from footfall.stores.documents import PAGE_VIEWS, SESSIONS, VISITORS

__all__ = ["DayRange", "day_range", "summarize", "summary_query", "change", "METRICS"]

METRICS = ("total_visits", "unique_visitors", "page_views", "views_per_visit", "bounce_rate", "visit_duration",
           "new_visits", "returning_visits")


def _visits(start: datetime, end: datetime, site: str | None, clauses: Sequence[Clause], period: str) -> list[dict]:
    return [time_match("started_at", start, end, site), *filter_stages(clauses),
            {"$project": {**visit_facts(), "period": {"$literal": period}}}]


def _page_views(start: datetime, end: datetime, site: str | None, clauses: Sequence[Clause],
                period: str) -> dict[str, Any]:
    stages = [*views_pipeline(start, end, site, clauses), {"$group": {"_id": None, "page_views": {"$sum": 1}}}]
    return {"$unionWith": {"coll": PAGE_VIEWS, "pipeline": [*stages, {"$set": {"_id": {"$literal": period}}}]}}


def summary_query(start: datetime, end: datetime, site: str | None = None, clauses: Sequence[Clause] = (),
                  previous: tuple[datetime, datetime] | None = None) -> Query:
    """The summary aggregation on the raw collections (pure).

    :param start: inclusive lower bound (UTC datetime). :param end: exclusive upper bound.
    :param site: one site, or ``None`` for every site.
    :param clauses: filter clauses (:mod:`~footfall.dashboard_queries.filters`).
    :param previous: ``(start, end)`` of the period to compare with, or ``None``.
    :return: a :class:`Query` on ``sessions`` yielding one document per period that has data,
        ``{"_id": "current" | "previous", "visits", "visitors", "bounces", "duration_ms", "new",
        "page_views"}``.
    """
    periods = [("current", start, end)] + ([("previous", *previous)] if previous else [])
    stages = _visits(start, end, site, clauses, "current")
    if previous:
        stages.append({"$unionWith": {"coll": SESSIONS, "pipeline": _visits(*previous, site, clauses, "previous")}})
    period_start = {"$cond": [{"$eq": ["$_id.period", "current"]}, start, previous[0] if previous else start]}
    stages += [
        {"$group": {"_id": {"period": "$period", "site": "$site", "visitor": "$visitor_id"},
                    "visits": {"$sum": 1}, "bounces": {"$sum": "$bounce"}, "duration_ms": {"$sum": "$duration_ms"}}},
        {"$set": {"visitor_key": {"$concat": ["$_id.site", "|", "$_id.visitor"]}}},
        {"$lookup": {"from": VISITORS, "localField": "visitor_key", "foreignField": "_id",
                     "pipeline": [{"$project": {"_id": 0, "first_seen_at": 1}}], "as": "seen"}},
        {"$set": {"seen": {"$arrayElemAt": ["$seen", 0]}}},
        {"$set": {"new": {"$cond": [{"$lt": [{"$ifNull": ["$seen.first_seen_at", end]}, period_start]},
                                    0, "$visits"]}}},
        # one visitor on two sites is one unique visitor when every site is counted
        {"$group": {"_id": {"period": "$_id.period", "visitor": "$_id.visitor"}, "visits": {"$sum": "$visits"},
                    "bounces": {"$sum": "$bounces"}, "duration_ms": {"$sum": "$duration_ms"},
                    "new": {"$sum": "$new"}}},
        {"$group": {"_id": "$_id.period", "visits": {"$sum": "$visits"}, "visitors": {"$sum": 1},
                    "bounces": {"$sum": "$bounces"}, "duration_ms": {"$sum": "$duration_ms"},
                    "new": {"$sum": "$new"}}},
        *[_page_views(a, b, site, clauses, name) for name, a, b in periods],
        {"$group": {"_id": "$_id", **{k: {"$sum": f"${k}"} for k in (
            "visits", "visitors", "bounces", "duration_ms", "new", "page_views")}}},
    ]
    return Query(SESSIONS, stages)


def change(current: float, previous: float) -> float | None:
    """Percent change from ``previous`` to ``current`` (1 decimal); ``None`` when ``previous`` is 0."""
    return round((current - previous) / previous * 100, 1) if previous else None


def _metrics(row: dict[str, Any] | None) -> dict[str, Any]:
    row = row or {}
    return visit_metrics(int(row.get("visits", 0)), int(row.get("visitors", 0)), int(row.get("page_views", 0)),
                         int(row.get("bounces", 0)), float(row.get("duration_ms", 0)), int(row.get("new", 0)))


def summarize(db: Database, start: datetime, end: datetime, site: str | None = None, *,
              filters: str | Iterable[Clause] | None = None, previous: tuple[datetime, datetime] | None = None,
              rollups: bool = True) -> dict[str, Any]:
    """The summary, from the rollups when they can answer (see the module doc), else by
    :func:`summary_query` (one round trip on the raw collections).

    :param db: the footfall database.
    :param start: inclusive lower bound (UTC datetime); :param end: exclusive upper bound.
    :param site: one site, or ``None`` for every site.
    :param filters: the ``filters`` grammar's text, or parsed clauses.
    :param previous: ``(start, end)`` of the period to compare with (see
        :meth:`~footfall.dashboard_queries.periods.Period.previous`).
    :param rollups: allow the rollups (the answer is the same either way; ``False`` forces the raw path).
    :return: ``{"source": "rollups" | "raw", "total_visits": int, "unique_visitors": int, "page_views": int,
        "views_per_visit": float,
        "bounce_rate": float (0..1), "visit_duration": int (seconds), "new_visits": int,
        "returning_visits": int}``, plus, with ``previous``, ``"previous": {same keys}`` and
        ``"change": {same keys: percent (1 decimal) or None when the previous value is 0}``.
    :raises InvalidQuery: ``filters`` does not parse. :raises StoreUnavailable: MongoDB did not answer.
    """
    clauses = as_clauses(filters)
    edges = (start, end, *(previous or ()))
    sel = from_rollups.select(db, site, clauses, *edges) if rollups else None
    if sel is not None:
        try:
            rows = {"current": from_rollups.summary_row(sel, start, end)}
            if previous is not None:
                rows["previous"] = from_rollups.summary_row(sel, *previous)
        except from_rollups.Unanswerable:
            sel = None
    if sel is None:
        rows = {row["_id"]: row for row in run(db, summary_query(start, end, site, clauses, previous))}
    result = _metrics(rows.get("current"))
    if previous is not None:
        before = _metrics(rows.get("previous"))
        result["previous"] = before
        result["change"] = {key: change(result[key], before[key]) for key in METRICS}
    result["source"] = "raw" if sel is None else "rollups"
    return result
