"""The summary definitions on hand-made documents: visits, unique visitors over the range, page views."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from footfall.dashboard_queries import day_range, summarize
from footfall.stores.mongo_writer import ensure_indexes


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


@pytest.fixture
def seeded(mongo_db):
    ensure_indexes(mongo_db)
    sessions = [
        # visitor a: three visits on three days; visitor b: one; visitor c on another site
        ("s1", "a", "web", at(1)), ("s2", "a", "web", at(2)), ("s3", "a", "web", at(3)),
        ("s4", "b", "web", at(2, 23)), ("s5", "c", "blog", at(2)),
        ("s6", "d", "web", at(4, 0)),  # first instant of the day after the range below
    ]
    mongo_db.sessions.insert_many(
        [{"_id": sid, "visitor_id": vid, "site": site, "started_at": ts, "last_seen_at": ts} for sid, vid, site, ts
         in sessions])
    views = [("web", at(1)), ("web", at(2)), ("web", at(3, 23)), ("blog", at(2)), ("web", at(4, 0))]
    mongo_db.page_views.insert_many([{"site": site, "ts": ts, "path": "/"} for site, ts in views])
    return mongo_db


def test_unique_visitors_count_a_visitor_once_over_the_whole_range(seeded) -> None:
    days = day_range(date(2026, 3, 1), date(2026, 3, 3), today=date(2026, 3, 10))
    assert summarize(seeded, days.start, days.end, "web") == {
        "total_visits": 4, "unique_visitors": 2, "page_views": 3}


def test_all_sites_when_no_site_is_named(seeded) -> None:
    days = day_range(date(2026, 3, 1), date(2026, 3, 3), today=date(2026, 3, 10))
    assert summarize(seeded, days.start, days.end, None) == {
        "total_visits": 5, "unique_visitors": 3, "page_views": 4}


def test_the_end_day_is_inclusive_and_the_next_midnight_excluded(seeded) -> None:
    one_day = day_range(date(2026, 3, 4), date(2026, 3, 4), today=date(2026, 3, 10))
    assert summarize(seeded, one_day.start, one_day.end, "web") == {
        "total_visits": 1, "unique_visitors": 1, "page_views": 1}


def test_an_empty_range_counts_zero(seeded) -> None:
    start = at(20)
    assert summarize(seeded, start, start + timedelta(days=1), "web") == {
        "total_visits": 0, "unique_visitors": 0, "page_views": 0}


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        pytest.param(None, None, (date(2026, 3, 10), date(2026, 3, 10)), id="default is today"),
        pytest.param(date(2026, 3, 1), None, (date(2026, 3, 1), date(2026, 3, 10)), id="start alone runs to today"),
        pytest.param(None, date(2026, 3, 2), (date(2026, 3, 2), date(2026, 3, 2)), id="past end alone is one day"),
    ],
)
def test_day_range_defaults(first, last, expected) -> None:
    days = day_range(first, last, today=date(2026, 3, 10))
    assert (days.first, days.last) == expected
    assert days.end - days.start == timedelta(days=(expected[1] - expected[0]).days + 1)


def test_day_range_rejects_end_before_start() -> None:
    with pytest.raises(ValueError, match="before start"):
        day_range(date(2026, 3, 5), date(2026, 3, 4), today=date(2026, 3, 10))
