"""The summary's definitions on hand-built documents, against plain Python over the same documents."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from footfall.dashboard_queries import Period, day_range, parse_filters, summarize
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.dashboard_queries.summary import change
from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.rollup_build import ensure_built
from tests.dashboard_queries.data import reference_summary

BERLIN = resolve_timezone("Europe/Berlin")


def period(first: str, last: str, tz: str = "Europe/Berlin") -> Period:
    return Period(date.fromisoformat(first), date.fromisoformat(last), resolve_timezone(tz))


CASES = [
    pytest.param(period("2025-03-28", "2025-03-31"), "web", None, id="Berlin days across the spring DST change"),
    pytest.param(period("2025-03-30", "2025-03-30"), "web", None, id="the 23-hour day"),
    pytest.param(period("2025-10-26", "2025-10-26"), "web", None, id="the 25-hour day"),
    pytest.param(period("2025-03-27", "2025-04-03", "UTC"), None, None, id="every site, UTC"),
    pytest.param(period("2025-03-27", "2025-04-03", "Asia/Kolkata"), "web", None, id="a half-hour zone"),
    pytest.param(period("2025-03-27", "2025-04-03"), "web", "country==DE", id="a visit-level filter"),
    pytest.param(period("2025-03-27", "2025-04-03"), "web", "page==/pricing", id="a page filter"),
    pytest.param(period("2025-03-27", "2025-04-03"), "web", "page!=/pricing", id="a negated page filter"),
    pytest.param(period("2025-03-27", "2025-04-03"), None, "referrer==Direct / None;device!=(none)",
                 id="missing values"),
    pytest.param(period("2025-10-24", "2025-10-28"), "web", "source==newsletter|google.com", id="source"),
    pytest.param(period("2025-03-27", "2025-04-03"), "web", "event==signup", id="an event filter"),
    pytest.param(period("2025-03-27", "2025-04-03"), None, "route~BLOG;browser~saf", id="substring filters"),
]


@pytest.mark.parametrize(("days", "site", "filters"), CASES)
def test_summary_matches_the_definitions(seeded_db, dataset, days: Period, site, filters) -> None:
    expected = reference_summary(dataset, days.start, days.end, site, filters)
    assert expected["total_visits"] > 0 or filters is not None
    found = summarize(seeded_db, days.start, days.end, site, filters=filters)
    assert found.pop("source") == ("rollups" if answered_by_rollups(days, site, filters) else "raw")
    assert found == expected
    raw = summarize(seeded_db, days.start, days.end, site, filters=filters, rollups=False)
    assert raw.pop("source") == "raw"
    assert raw == expected


def answered_by_rollups(days: Period, site: str | None, filters: str | None) -> bool:
    """One site, whole-hour edges, no filter or one ``==`` clause with one value (from_rollups' rule)."""
    clauses = parse_filters(filters)
    simple = not clauses or (len(clauses) == 1 and clauses[0].op == "==" and len(clauses[0].values) == 1)
    return site is not None and days.tz.key != "Asia/Kolkata" and simple


def test_rollups_answer_without_reading_raw_data(mongo_db) -> None:
    """Once built, an hour's figures come from ``rollups`` alone: with the raw page views gone (as
    never in real life), the rollup answer still counts them and the raw answer does not."""
    ensure_indexes(mongo_db)
    at = datetime(2025, 3, 30, 5, 10, tzinfo=UTC)
    mongo_db.visitors.insert_one({"_id": "web|v", "site": "web", "visitor_id": "v", "visitor_number": 1,
                                  "first_seen_at": at, "last_seen_at": at})
    mongo_db.sessions.insert_one({"_id": "s", "site": "web", "visitor_id": "v", "started_at": at,
                                  "last_seen_at": at, "page_views": 1, "events": 0})
    mongo_db.page_views.insert_many([{"_id": f"p{k}", "site": "web", "session_id": "s", "visitor_id": "v",
                                      "ts": at, "path": "/"} for k in range(7)])
    ensure_built(mongo_db, "web")
    mongo_db.page_views.delete_many({})
    days = period("2025-03-30", "2025-03-30")
    assert summarize(mongo_db, days.start, days.end, "web")["page_views"] == 7
    assert summarize(mongo_db, days.start, days.end, "web", rollups=False)["page_views"] == 0


@pytest.mark.parametrize("compare", ["previous_period", "year_over_year"])
def test_comparison_with_an_earlier_period(seeded_db, dataset, compare: str) -> None:
    days = period("2025-10-26", "2025-10-28") if compare == "previous_period" else period("2025-03-29", "2025-04-01")
    before = days.previous(compare)
    result = summarize(seeded_db, days.start, days.end, "web", previous=(before.start, before.end))
    assert result.pop("source") == "rollups"
    current = reference_summary(dataset, days.start, days.end, "web")
    previous = reference_summary(dataset, before.start, before.end, "web")
    assert {k: v for k, v in result.items() if k not in ("previous", "change")} == current
    assert result["previous"] == previous
    assert result["change"] == {
        k: (round((current[k] - previous[k]) / previous[k] * 100, 1) if previous[k] else None) for k in current}


def test_previous_period_with_data_on_both_sides(seeded_db, dataset) -> None:
    days = period("2025-10-26", "2025-10-28")
    before = days.previous("previous_period")
    assert (before.first, before.last) == (date(2025, 10, 23), date(2025, 10, 25))
    result = summarize(seeded_db, days.start, days.end, "web", previous=(before.start, before.end))
    assert result["previous"]["total_visits"] > 0 and result["total_visits"] > 0
    assert result["change"]["total_visits"] == change(result["total_visits"], result["previous"]["total_visits"])


def test_new_and_returning_visits(mongo_db) -> None:
    ensure_indexes(mongo_db)
    start = datetime(2025, 5, 1, tzinfo=UTC)
    mongo_db.visitors.insert_many([
        {"_id": "web|old", "site": "web", "visitor_id": "old", "first_seen_at": start - timedelta(days=30)},
        {"_id": "web|new", "site": "web", "visitor_id": "new", "first_seen_at": start + timedelta(hours=1)},
    ])
    mongo_db.sessions.insert_many([
        {"_id": "a", "site": "web", "visitor_id": "old", "started_at": start + timedelta(hours=2),
         "last_seen_at": start + timedelta(hours=2, minutes=10), "page_views": 3, "events": 0},
        {"_id": "b", "site": "web", "visitor_id": "new", "started_at": start + timedelta(hours=1),
         "last_seen_at": start + timedelta(hours=1, minutes=1), "page_views": 1, "events": 0},
        {"_id": "c", "site": "web", "visitor_id": "new", "started_at": start + timedelta(hours=5),
         "last_seen_at": start + timedelta(hours=5, minutes=4), "page_views": 1, "events": 1},
        {"_id": "d", "site": "web", "visitor_id": "unknown", "started_at": start + timedelta(hours=6),
         "last_seen_at": start + timedelta(hours=6), "page_views": 0},
    ])
    result = summarize(mongo_db, start, start + timedelta(days=1), "web", rollups=False)
    # a: returning (first seen a month ago); b, c: new (first seen in the range); d: no visitors document: new
    assert (result["new_visits"], result["returning_visits"]) == (3, 1)
    # b is the only bounce (one view, no event); c has one view and an event: not a bounce
    assert result["bounce_rate"] == 0.25
    # durations: a 600 s, b 0 (bounce), c 240 s, d 0 s -> mean 210 s
    assert result["visit_duration"] == 210
    assert result["unique_visitors"] == 3


def test_unique_visitors_count_a_visitor_once_over_the_whole_range(mongo_db) -> None:
    ensure_indexes(mongo_db)
    at = lambda day, hour=12: datetime(2026, 3, day, hour, tzinfo=UTC)  # noqa: E731
    sessions = [("s1", "a", "web", at(1)), ("s2", "a", "web", at(2)), ("s3", "a", "web", at(3)),
                ("s4", "b", "web", at(2, 23)), ("s5", "c", "blog", at(2)), ("s6", "a", "blog", at(2)),
                ("s7", "d", "web", at(4, 0))]
    mongo_db.sessions.insert_many([{"_id": sid, "visitor_id": vid, "site": site, "started_at": ts,
                                    "last_seen_at": ts, "page_views": 1} for sid, vid, site, ts in sessions])
    days = day_range(date(2026, 3, 1), date(2026, 3, 3), today=date(2026, 3, 10))
    assert summarize(mongo_db, days.start, days.end, "web")["unique_visitors"] == 2
    # every site: visitor a on web and blog is one visitor id
    everywhere = summarize(mongo_db, days.start, days.end)
    assert (everywhere["total_visits"], everywhere["unique_visitors"]) == (6, 3)


def test_an_empty_range_counts_zero(seeded_db) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    assert summarize(seeded_db, start, start + timedelta(days=1), "web") == {
        "source": "rollups", "total_visits": 0, "unique_visitors": 0, "page_views": 0, "views_per_visit": 0,
        "bounce_rate": 0,
        "visit_duration": 0, "new_visits": 0, "returning_visits": 0}
