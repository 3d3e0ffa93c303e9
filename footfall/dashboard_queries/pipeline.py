"""Pipeline pieces every dashboard query shares (pure), and the one function that runs a query.

Every query is one ``aggregate`` command (:class:`Query`: a collection and a pipeline). Each pipeline
and each ``$unionWith`` sub-pipeline starts with a ``$match`` on the site and time range alone, which
an index answers (``sessions.site_started_at``, ``page_views.site_ts``, ``custom_events.site_ts``,
or the time-only index when no site is given); filter clauses follow in a
second ``$match`` (MongoDB merges the two, and a planner that only uses an index for a pure range
still does). Joins are ``$lookup`` on ``_id`` (``sessions`` by a page view's ``session_id``,
``visitors`` by ``"<site>|<visitor id>"``).

Visit metrics (docs/data-model.md, "Definitions"): a bounce is a visit with ``page_views == 1`` and
``events == 0`` (a missing ``events`` counts 0); a visit's duration is ``last_seen_at - started_at``,
0 for a bounce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.dashboard_queries.filters import Clause, session_condition, view_condition
from footfall.errors import StoreUnavailable
from footfall.stores.documents import SESSIONS

__all__ = ["Query", "run", "time_match", "filter_stages", "visit_facts", "views_pipeline",
           "visit_metrics", "BOUNCE"]


@dataclass(frozen=True, slots=True)
class Query:
    """One aggregation: ``db[collection].aggregate(pipeline)``."""

    collection: str
    pipeline: list[dict[str, Any]]


def run(db: Database, query: Query) -> list[dict[str, Any]]:
    """Run ``query`` (one round trip) and return its documents.

    :raises StoreUnavailable: MongoDB did not answer or refused the pipeline.
    """
    try:
        return list(db[query.collection].aggregate(query.pipeline))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer the {query.collection} query: {exc}") from exc


def time_match(field: str, start: datetime, end: datetime, site: str | None) -> dict[str, Any]:
    """``{"$match": {"site": site, field: {"$gte": start, "$lt": end}}}`` (no site: every site)."""
    condition: dict[str, Any] = {field: {"$gte": start, "$lt": end}}
    return {"$match": {"site": site, **condition} if site is not None else condition}


def filter_stages(clauses: Sequence[Clause], prefix: str = "") -> list[dict[str, Any]]:
    """A ``$match`` of the sessions (or of joined sessions under ``prefix``) on ``clauses``; none
    when there are no clauses."""
    condition = session_condition(clauses, prefix)
    return [{"$match": condition}] if condition else []


BOUNCE: dict[str, Any] = {"$and": [{"$eq": ["$page_views", 1]}, {"$eq": [{"$ifNull": ["$events", 0]}, 0]}]}


def visit_facts() -> dict[str, Any]:
    """``$project`` fields of a session: ``site``, ``visitor_id``, ``bounce`` (1/0), ``duration_ms``."""
    return {
        "_id": 0,
        "site": 1,
        "visitor_id": 1,
        "bounce": {"$cond": [BOUNCE, 1, 0]},
        "duration_ms": {"$cond": [BOUNCE, 0, {"$max": [0, {"$subtract": ["$last_seen_at", "$started_at"]}]}]},
    }


def views_pipeline(start: datetime, end: datetime, site: str | None, clauses: Sequence[Clause],
                   join: bool = False) -> list[dict[str, Any]]:
    """The first stages of a pipeline on ``page_views``: the views in ``[start, end)`` that count
    under ``clauses``.

    A view counts when its own ``path`` / ``route`` satisfy the ``page`` / ``route`` clauses and its
    visit (joined as ``visit`` from ``sessions`` by ``_id``) satisfies every clause. Without clauses
    no join is made unless ``join`` (the caller reads ``visit.*``).
    """
    stages = [time_match("ts", start, end, site)]
    if own := view_condition(clauses):
        stages.append({"$match": own})
    if clauses or join:
        stages += [
            {"$lookup": {"from": SESSIONS, "localField": "session_id", "foreignField": "_id",
                         "pipeline": [{"$project": {"event_ids": 0, "user_agent": 0}}], "as": "visit"}},
            {"$unwind": "$visit"},
            *filter_stages(clauses, "visit."),
        ]
    return stages


def visit_metrics(visits: int, visitors: int, page_views: int, bounces: int, duration_ms: float,
                  new_visits: int | None = None) -> dict[str, Any]:
    """The summary metrics from the sums a pipeline returns.

    :return: ``total_visits``, ``unique_visitors``, ``page_views``, ``views_per_visit`` (2 decimals),
        ``bounce_rate`` (0..1, 4 decimals), ``visit_duration`` (mean seconds, rounded to a whole
        second), and ``new_visits`` / ``returning_visits`` when ``new_visits`` is given. Ratios are 0
        when there is no visit.
    """
    metrics: dict[str, Any] = {
        "total_visits": visits,
        "unique_visitors": visitors,
        "page_views": page_views,
        "views_per_visit": round(page_views / visits, 2) if visits else 0,
        "bounce_rate": round(bounces / visits, 4) if visits else 0,
        "visit_duration": round(duration_ms / 1000 / visits) if visits else 0,
    }
    if new_visits is not None:
        metrics["new_visits"] = new_visits
        metrics["returning_visits"] = visits - new_visits
    return metrics

