"""Total visits versus unique visitors: the summary pipeline (pure) and the function that runs it.

Definitions (issue 2, from the design seed ``shared/seeds/002_5b98de07f6724198.txt``):

- **total visits** = sessions whose ``started_at`` falls in the range;
- **unique visitors** = distinct ``visitor_id`` among those sessions, over the whole range (a
  visitor seen on three days counts once);
- **page views** = ``page_views`` documents whose ``ts`` falls in the range.

The range is half-open, ``[start, end)``, UTC. One aggregation round trip: the sessions in range are
joined with the page views in range by ``$unionWith`` and counted in one ``$facet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.errors import StoreUnavailable
from footfall.stores.documents import PAGE_VIEWS, SESSIONS

__all__ = ["DayRange", "summary_pipeline", "summarize", "day_range"]


@dataclass(frozen=True, slots=True)
class DayRange:
    """Inclusive UTC calendar days ``first``..``last``, i.e. instants ``[start, end)``."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        """00:00 UTC of ``first``."""
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """00:00 UTC of the day after ``last`` (exclusive)."""
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)


def day_range(first: date | None, last: date | None, today: date) -> DayRange:
    """The inclusive day range the stats endpoint and ``footfall stats`` use ("default today").

    :param first: the first day; when ``None``, today (or ``last``, if that is earlier).
    :param last: the last day; when ``None``, today (or ``first``, if that is later).
    :param today: the current UTC date (passed in: no clock here).
    :raises ValueError: ``last`` is before ``first`` (the message gives both).
    """
    if first is None:
        first = today if last is None else min(last, today)
    if last is None:
        last = max(first, today)
    if last < first:
        raise ValueError(f"end {last.isoformat()} is before start {first.isoformat()}")
    return DayRange(first, last)


def summary_pipeline(start: datetime, end: datetime, site: str | None) -> list[dict[str, Any]]:
    """The aggregation pipeline, to run on ``sessions``, counting visits, visitors and page views.

    :param start: inclusive lower bound (UTC datetime).
    :param end: exclusive upper bound (UTC datetime).
    :param site: one site, or ``None`` for all sites.
    :return: a pipeline yielding one document ``{"visits": [{"n"}], "visitors": [{"n"}],
        "page_views": [{"n"}]}`` (an empty list where the count is 0).
    """
    session_match: dict[str, Any] = {"started_at": {"$gte": start, "$lt": end}}
    view_match: dict[str, Any] = {"ts": {"$gte": start, "$lt": end}}
    if site is not None:
        session_match = {"site": site, **session_match}
        view_match = {"site": site, **view_match}
    return [
        {"$match": session_match},
        {"$project": {"_id": 0, "visitor_id": 1, "kind": {"$literal": "session"}}},
        {"$unionWith": {"coll": PAGE_VIEWS, "pipeline": [
            {"$match": view_match},
            {"$project": {"_id": 0, "kind": {"$literal": "page_view"}}},
        ]}},
        {"$facet": {
            "visits": [{"$match": {"kind": "session"}}, {"$count": "n"}],
            "visitors": [{"$match": {"kind": "session"}}, {"$group": {"_id": "$visitor_id"}}, {"$count": "n"}],
            "page_views": [{"$match": {"kind": "page_view"}}, {"$count": "n"}],
        }},
    ]


def _count(facet: dict[str, Any], name: str) -> int:
    rows = facet.get(name) or []
    return int(rows[0]["n"]) if rows else 0


def summarize(db: Database, start: datetime, end: datetime, site: str | None = None) -> dict[str, int]:
    """Run :func:`summary_pipeline` (one round trip).

    :param db: the footfall database.
    :param start: inclusive lower bound (UTC datetime).
    :param end: exclusive upper bound (UTC datetime).
    :param site: one site, or ``None`` for all.
    :return: ``{"total_visits": int, "unique_visitors": int, "page_views": int}``.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        rows = list(db[SESSIONS].aggregate(summary_pipeline(start, end, site)))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer the summary query: {exc}") from exc
    facet = rows[0] if rows else {}
    return {
        "total_visits": _count(facet, "visits"),
        "unique_visitors": _count(facet, "visitors"),
        "page_views": _count(facet, "page_views"),
    }
