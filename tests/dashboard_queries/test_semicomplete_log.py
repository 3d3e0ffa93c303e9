"""Issue 6's definitions against the real semicomplete access log.

The log is imported once with ``import_log`` (the same core decides its visits); then every figure of
the summary, for each of its days and for the whole range, the top-10 pages and the referrers are
compared with what :mod:`tests.dashboard_queries.log_truth` counts from the file in plain Python.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from footfall.dashboard_queries import breakdown, summarize
from footfall.importer import import_log
from tests.conftest import SHARED_DATA, with_database
from tests.dashboard_queries.log_truth import LogTruth, read_log

LOG = SHARED_DATA / "access-logs" / "semicomplete-2015-05.log"
SITE = "semicomplete"
HOST = "semicomplete.com"
DAYS = [date(2015, 5, 17) + timedelta(days=n) for n in range(4)]  # the log's days (UTC)


@pytest.fixture(scope="module")
def truth() -> LogTruth:
    return read_log(LOG)


@pytest.fixture(scope="module")
def imported(mongodb_base_uri: str) -> Iterator[Database]:
    """The log imported once into a database of this module's own."""
    name = f"footfall_test_{uuid.uuid4().hex[:12]}"
    client: MongoClient = MongoClient(with_database(mongodb_base_uri, name), tz_aware=True)
    db = client.get_default_database()
    import_log(LOG, db, site=SITE, session_ttl=1800, host=HOST)
    yield db
    client.drop_database(name)
    client.close()


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


RANGES = [pytest.param(midnight(day), midnight(day) + timedelta(days=1), id=day.isoformat()) for day in DAYS]
RANGES.append(pytest.param(midnight(DAYS[0]), midnight(DAYS[-1]) + timedelta(days=1), id="whole-range"))


def assert_summary_matches(found: dict, expected: dict) -> None:
    for key in ("total_visits", "unique_visitors", "page_views", "new_visits", "returning_visits"):
        assert found[key] == expected[key], key
    assert found["views_per_visit"] == pytest.approx(expected["views_per_visit"], abs=0.005)
    assert found["bounce_rate"] == pytest.approx(expected["bounce_rate"], abs=0.00005)
    assert found["visit_duration"] == pytest.approx(expected["visit_duration"], abs=0.5)


@pytest.mark.parametrize(("start", "end"), RANGES)
@pytest.mark.parametrize("rollups", [True, False], ids=["rollups", "raw"])
def test_summary_matches_the_log(imported, truth, start, end, rollups):
    expected = truth.summary(start, end)
    assert expected["total_visits"] > 100  # the day holds real traffic: the comparison means something
    assert_summary_matches(summarize(imported, start, end, SITE, rollups=rollups), expected)


def test_unique_visitors_of_the_range_are_not_a_sum_of_days(imported, truth):
    start, end = midnight(DAYS[0]), midnight(DAYS[-1]) + timedelta(days=1)
    whole = summarize(imported, start, end, SITE)["unique_visitors"]
    per_day = sum(summarize(imported, midnight(d), midnight(d) + timedelta(days=1), SITE)["unique_visitors"]
                  for d in DAYS)
    assert whole == truth.summary(start, end)["unique_visitors"]
    assert whole < per_day  # visitors seen on several days count once for the range


def test_previous_period_and_change(imported, truth):
    day, before = midnight(DAYS[2]), midnight(DAYS[1])
    found = summarize(imported, day, day + timedelta(days=1), SITE, previous=(before, day))
    assert_summary_matches(found["previous"], truth.summary(before, day))
    now, then = truth.summary(day, day + timedelta(days=1)), truth.summary(before, day)
    assert found["change"]["total_visits"] == pytest.approx(
        (now["total_visits"] - then["total_visits"]) / then["total_visits"] * 100, abs=0.05)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_top_ten_pages(imported, truth, start, end):
    found = breakdown(imported, start, end, "page", SITE, limit=10)
    expected = truth.top_pages(start, end, 10)
    tenth = expected[-1][1]
    rows = [(row["value"], row["page_views"]) for row in found["results"]]
    # Same counts in the same order; pages tied with the tenth may be listed in either order.
    assert [count for _, count in rows] == [count for _, count in expected]
    assert {p for p, c in rows if c > tenth} == {p for p, c in expected if c > tenth}
    visitors = truth.page_visitors(start, end)
    for row in found["results"]:
        assert row["unique_visitors"] == visitors[row["value"]], row["value"]
    assert found["total"] == len(visitors)


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_top_referrers(imported, truth, start, end):
    found = breakdown(imported, start, end, "referrer", SITE, limit=None)
    expected = truth.referrers(start, end, HOST)
    assert {row["value"]: (row["total_visits"], row["unique_visitors"]) for row in found["results"]} == expected
    assert "Direct / None" in expected and HOST not in expected  # own pages are not a source
    top = sorted(expected.items(), key=lambda item: -item[1][1])[:10]
    assert [row["unique_visitors"] for row in found["results"][:10]] == [v for _, (_, v) in top]


def test_utm_source_filter(imported, truth):
    start, end = midnight(DAYS[0]), midnight(DAYS[-1]) + timedelta(days=1)
    sources = truth.utm_sources(start, end)
    [(name, visits)] = [(k, v) for k, v in sources.items() if k != "(none)"][:1]
    assert summarize(imported, start, end, SITE, filters=f"utm_source=={name}")["total_visits"] == visits
