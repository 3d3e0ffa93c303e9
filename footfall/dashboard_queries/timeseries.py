"""One metric over time, bucketed by hour, day, week or month in the site's time zone.

Buckets come from :func:`~footfall.dashboard_queries.periods.buckets` (DST-correct) and are handed to
MongoDB as ``$bucket`` boundaries (UTC instants), so the server needs no time-zone support. A visit
falls in the bucket of its ``started_at``, a page view in that of its ``ts``. Every bucket is in the
answer, zero-filled.

Metrics (definitions as in :mod:`~footfall.dashboard_queries.summary`, per bucket): ``visits``,
``unique_visitors`` (distinct visitors of the bucket), ``page_views``, ``bounce_rate`` (0..1; 0 for a
bucket without visits), ``visit_duration`` (mean seconds; 0 without visits). For one site,
unfiltered or filtered by one ``dimension==value``, whose bucket edges are whole UTC hours (any zone
with whole-hour offsets), every metric comes from the rollups
(:mod:`~footfall.dashboard_queries.from_rollups`): the cost grows with the days and hours, not with
the visits. Otherwise one aggregation on the raw collections.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args

from pymongo.database import Database

from footfall.dashboard_queries import from_rollups
from footfall.dashboard_queries.filters import Clause, as_clauses
from footfall.dashboard_queries.periods import Bucket, Period, buckets
from footfall.dashboard_queries.pipeline import Query, filter_stages, run, time_match, views_pipeline
from footfall.dashboard_queries.pipeline import visit_facts as _visit_facts
from footfall.errors import InvalidQuery
from footfall.stores.cells import Cell
from footfall.stores.documents import PAGE_VIEWS, SESSIONS

__all__ = ["Metric", "METRICS", "timeseries", "timeseries_query"]

Metric = Literal["visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"]
METRICS: tuple[str, ...] = get_args(Metric)
OUTSIDE = "outside"  # $bucket's default: nothing lands there, the range $match sees to it


def _bucket(field: str, edges: list[Any], output: dict[str, Any]) -> dict[str, Any]:
    return {"$bucket": {"groupBy": f"${field}", "boundaries": edges, "default": OUTSIDE, "output": output}}


def timeseries_query(spans: Sequence[Bucket], metric: str, site: str | None = None,
                     clauses: Sequence[Clause] = ()) -> Query:
    """The time-series aggregation on the raw collections (pure).

    :param spans: the buckets, in order, contiguous (:func:`~footfall.dashboard_queries.periods.buckets`).
    :param metric: one of :data:`METRICS`.
    :param site: one site, or ``None`` for every site. :param clauses: filter clauses.
    :return: a :class:`Query` yielding ``{"_id": <bucket start (UTC datetime)>, ...sums}`` for the
        buckets with data: ``value`` (visits, page views), ``visitors`` (a list of visitor ids), or
        ``visits`` with ``bounces`` / ``duration_ms``.
    :raises InvalidQuery: (parameter ``metric``) an unknown metric.
    """
    if metric not in METRICS:
        raise InvalidQuery("metric", f"metric must be one of {', '.join(METRICS)}, got {str(metric)[:40]!r}")
    edges = [span.start for span in spans] + [spans[-1].end]
    start, end = edges[0], edges[-1]
    if metric == "page_views":
        return Query(PAGE_VIEWS, [*views_pipeline(start, end, site, clauses),
                                  _bucket("ts", edges, {"value": {"$sum": 1}})])
    outputs: dict[str, dict[str, Any]] = {
        "visits": {"value": {"$sum": 1}},
        "unique_visitors": {"visitors": {"$addToSet": "$visitor_id"}},
        "bounce_rate": {"visits": {"$sum": 1}, "bounces": {"$sum": "$bounce"}},
        "visit_duration": {"visits": {"$sum": 1}, "duration_ms": {"$sum": "$duration_ms"}},
    }
    output = outputs[metric]
    facts = {**_visit_facts(), "started_at": 1}
    return Query(SESSIONS, [time_match("started_at", start, end, site), *filter_stages(clauses),
                            {"$project": facts}, _bucket("started_at", edges, output)])


def _cell_value(metric: str, cell: Cell) -> int | float:
    if metric == "unique_visitors":
        return cell.unique_visitors
    if metric == "bounce_rate":
        return round(cell.bounces / cell.visits, 4) if cell.visits else 0
    if metric == "visit_duration":
        return round(cell.duration_ms / 1000 / cell.visits) if cell.visits else 0
    return cell.page_views if metric == "page_views" else cell.visits


def _value(metric: str, row: dict[str, Any] | None) -> int | float:
    if row is None:
        return 0
    if metric == "unique_visitors":
        return len(row.get("visitors", []))
    if metric == "bounce_rate":
        return round(row["bounces"] / row["visits"], 4) if row.get("visits") else 0
    if metric == "visit_duration":
        return round(row["duration_ms"] / 1000 / row["visits"]) if row.get("visits") else 0
    return int(row.get("value", 0))


def timeseries(db: Database, period: Period, metric: str = "visits", interval: str = "day", site: str | None = None,
               *, filters: str | Iterable[Clause] | None = None, rollups: bool = True) -> dict[str, Any]:
    """Run :func:`timeseries_query` (one round trip) and zero-fill the buckets without data.

    :param db: the footfall database.
    :param period: the days and time zone (:class:`~footfall.dashboard_queries.periods.Period`).
    :param metric: ``visits``, ``unique_visitors``, ``page_views``, ``bounce_rate`` or ``visit_duration``.
    :param interval: ``hour``, ``day``, ``week`` or ``month``.
    :param site: one site, or ``None`` for every site. :param filters: the grammar's text or clauses.
    :param rollups: allow the rollups (the answer is the same either way; ``False`` forces the raw path).
    :return: ``{"source": "rollups" | "raw", "metric": str, "interval": str, "tz": str, "points": [{"bucket": label,
        "value":
        number}, ...]}``, one point per bucket in order (labels: see
        :mod:`~footfall.dashboard_queries.periods`).
    :raises InvalidQuery: a bad metric, interval, too many buckets, or filters.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    clauses = as_clauses(filters)
    if metric not in METRICS:
        raise InvalidQuery("metric", f"metric must be one of {', '.join(METRICS)}, got {str(metric)[:40]!r}")
    spans = buckets(period, interval)
    edges = [span.start for span in spans] + [spans[-1].end]
    sel = from_rollups.select(db, site, clauses, *edges) if rollups else None
    if sel is not None:
        try:
            values = [_cell_value(metric, cell) for cell in from_rollups.bucket_cells(sel, edges)]
        except from_rollups.Unanswerable:
            sel = None
    if sel is None:
        rows = {row["_id"]: row for row in run(db, timeseries_query(spans, metric, site, clauses))}
        values = [_value(metric, rows.get(span.start)) for span in spans]
    return {
        "source": "raw" if sel is None else "rollups",
        "metric": metric,
        "interval": interval,
        "tz": period.tz.key,
        "points": [{"bucket": span.label, "value": value} for span, value in zip(spans, values, strict=True)],
    }
