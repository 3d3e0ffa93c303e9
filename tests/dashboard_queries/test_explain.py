"""Every query builder's pipeline is answered from an index: no collection scan anywhere.

The check runs ``explain`` on the query and, separately, on every ``$unionWith`` sub-pipeline against
its own collection: SecantusDB's explain describes only the outer ``$cursor`` stage (MongoDB's also
nests the sub-plans, so on MongoDB the sub-pipelines are simply checked twice). The plan is walked
for every ``"stage"`` value, which finds MongoDB's classic and SBE layouts and SecantusDB's alike:
no ``COLLSCAN``, and at least one index stage. ``$lookup`` joins must be on ``_id`` (always indexed),
which is asserted on the pipeline itself since neither server explains the inner side of a join.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from footfall.dashboard_queries import (
    DIMENSIONS,
    Period,
    breakdown_query,
    buckets,
    parse_filters,
    sessions_query,
    sites_query,
    summary_query,
    timeseries_query,
)
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.dashboard_queries.pipeline import Query

DAYS = Period(date(2025, 3, 27), date(2025, 4, 3), resolve_timezone("Europe/Berlin"))
KOLKATA = Period(date(2025, 3, 27), date(2025, 4, 3), resolve_timezone("Asia/Kolkata"))
INDEX_STAGES = ("IXSCAN", "IDHACK", "DISTINCT_SCAN", "EXPRESS_IXSCAN", "EXPRESS_CLUSTERED_IXSCAN", "COUNT_SCAN")


def plan_stages(node: Any) -> list[str]:
    """Every ``"stage"`` value anywhere in an explain document."""
    if isinstance(node, dict):
        found = [node["stage"]] if isinstance(node.get("stage"), str) else []
        return found + [s for value in node.values() for s in plan_stages(value)]
    if isinstance(node, list):
        return [s for item in node for s in plan_stages(item)]
    return []


def nested(pipeline: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The ``(collection, pipeline)`` of every ``$unionWith``, recursively; checks ``$lookup`` joins."""
    found = []
    for stage in pipeline:
        if "$unionWith" in stage:
            spec = stage["$unionWith"]
            found.append((spec["coll"], spec["pipeline"]))
            found += nested(spec["pipeline"])
        if "$lookup" in stage:
            assert stage["$lookup"]["foreignField"] == "_id", stage
            assert not any("$match" in s for s in stage["$lookup"].get("pipeline", [])), stage
        if "$facet" in stage:
            for sub in stage["$facet"].values():
                found += nested(sub)
    return found


def assert_indexed(db, query: Query) -> None:
    for collection, pipeline in [(query.collection, query.pipeline), *nested(query.pipeline)]:
        explained = db.command("explain", {"aggregate": collection, "pipeline": pipeline, "cursor": {}})
        stages = plan_stages(explained)
        assert "COLLSCAN" not in stages, (collection, pipeline[0], stages)
        assert any(s in INDEX_STAGES for s in stages), (collection, pipeline[0], stages)


def q(text: str | None) -> tuple:
    return parse_filters(text)


QUERIES = [
    pytest.param(summary_query(DAYS.start, DAYS.end, "web"), id="summary raw"),
    pytest.param(summary_query(DAYS.start, DAYS.end, None), id="summary every site"),
    pytest.param(summary_query(DAYS.start, DAYS.end, "web", q("country==DE;page==/docs"),
                               previous=(DAYS.previous().start, DAYS.previous().end)), id="summary filtered, compared"),
    pytest.param(summary_query(KOLKATA.start, KOLKATA.end, "web"), id="summary half-hour zone"),
    *[pytest.param(timeseries_query(buckets(DAYS, "day"), metric, "web"), id=f"timeseries {metric}")
      for metric in ("visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration")],
    pytest.param(timeseries_query(buckets(DAYS, "hour"), "page_views", None, q("source==google.com")),
                 id="timeseries page views filtered, every site"),
    pytest.param(timeseries_query(buckets(DAYS, "week"), "visits", "web"), id="timeseries raw visits"),
    *[pytest.param(breakdown_query(DAYS.start, DAYS.end, dimension, "web"), id=f"breakdown {dimension}")
      for dimension in DIMENSIONS],
    pytest.param(breakdown_query(DAYS.start, DAYS.end, "event", None, q("device==mobile")),
                 id="breakdown events filtered, every site"),
    pytest.param(breakdown_query(DAYS.start, DAYS.end, "page", "web", q("page~blog"), limit=None),
                 id="breakdown export"),
    pytest.param(sessions_query(DAYS.start, DAYS.end, "web", q("os!=iOS"), 10), id="sessions"),
    pytest.param(sessions_query(DAYS.start, DAYS.end, "web", (), 10, (DAYS.start, "s010")), id="sessions cursor"),
    pytest.param(sites_query(), id="sites"),
]


@pytest.mark.parametrize("query", QUERIES)
def test_no_collection_scan(seeded_db, query: Query) -> None:
    assert_indexed(seeded_db, query)


def test_the_check_catches_a_collection_scan(seeded_db) -> None:
    with pytest.raises(AssertionError):
        assert_indexed(seeded_db, Query("sessions", [{"$match": {"country": "DE"}}]))
    with pytest.raises(AssertionError):
        assert_indexed(seeded_db, Query("sessions", [{"$match": {"site": "web"}}, {"$unionWith": {
            "coll": "page_views", "pipeline": [{"$match": {"path": "/"}}]}}]))
