"""Time series in the site's time zone: every bucket present, values as plain Python buckets them."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from footfall.dashboard_queries import Period, buckets, parse_filters, timeseries, timeseries_query
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.errors import InvalidQuery
from tests.dashboard_queries.data import Dataset, metrics_of, selected


def period(first: str, last: str, tz: str = "Europe/Berlin") -> Period:
    return Period(date.fromisoformat(first), date.fromisoformat(last), resolve_timezone(tz))


def label_of(instant: datetime, days: Period, interval: str) -> str:
    """The bucket an instant falls in, computed directly from its local time."""
    local = instant.astimezone(days.tz)
    if interval == "hour":
        return instant.replace(minute=0, second=0, microsecond=0).astimezone(days.tz).isoformat()
    day = local.date()
    if interval == "week":
        day = max(days.first, day - timedelta(days=day.weekday()))
    elif interval == "month":
        day = max(days.first, day.replace(day=1))
    return day.isoformat()


def reference(data: Dataset, days: Period, metric: str, interval: str, site: str | None,
              filters: str | None) -> dict[str, Any]:
    visits, views = selected(data, days.start, days.end, site, filters)
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in visits:
        by_label[label_of(s["started_at"], days, interval)].append(s)
    view_counts: dict[str, int] = defaultdict(int)
    for v in views:
        view_counts[label_of(v["ts"], days, interval)] += 1
    if metric == "page_views":
        return dict(view_counts)
    key = {"visits": "total_visits"}.get(metric, metric)
    return {label: metrics_of(group, 0)[key] for label, group in by_label.items()}


CASES = [
    pytest.param(period("2025-03-30", "2025-03-30"), "hour", "web", None, id="hours of the 23-hour day"),
    pytest.param(period("2025-10-26", "2025-10-26"), "hour", None, None, id="hours of the 25-hour day"),
    pytest.param(period("2025-03-27", "2025-04-03"), "day", "web", None, id="days across spring forward"),
    pytest.param(period("2025-10-24", "2025-10-28"), "day", "web", "country==DE|FR", id="days, filtered"),
    pytest.param(period("2025-03-26", "2025-10-30"), "week", "web", None, id="weeks"),
    pytest.param(period("2025-03-15", "2025-10-30"), "month", None, "page~blog", id="months, filtered"),
    pytest.param(period("2025-03-27", "2025-04-03", "Asia/Kolkata"), "day", "web", None, id="half-hour zone"),
    pytest.param(period("2025-03-27", "2025-04-03", "America/New_York"), "day", "blog", None, id="New York"),
]


@pytest.mark.parametrize("metric", ["visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"])
@pytest.mark.parametrize(("days", "interval", "site", "filters"), CASES)
def test_timeseries_matches_plain_python_bucketing(seeded_db, dataset, days, interval, site, filters, metric) -> None:
    spans = buckets(days, interval)
    expected = reference(dataset, days, metric, interval, site, filters)
    assert set(expected) <= {s.label for s in spans}  # nothing of the range falls outside the buckets
    for rollups in (True, False):  # the rollups where they can answer, then the raw collections
        result = timeseries(seeded_db, days, metric, interval, site, filters=filters, rollups=rollups)
        assert result["source"] in (("rollups", "raw") if rollups else ("raw",))
        assert [p["bucket"] for p in result["points"]] == [s.label for s in spans]  # every bucket, in order
        assert {p["bucket"]: p["value"] for p in result["points"]} == {s.label: expected.get(s.label, 0)
                                                                         for s in spans}
        assert (result["metric"], result["interval"], result["tz"]) == (metric, interval, days.tz.key)


def test_the_dst_days_have_data_in_their_odd_hours(seeded_db, dataset) -> None:
    """The data set has visits in the hours a DST change shifts, so the cases above test something."""
    fall = period("2025-10-26", "2025-10-26")
    values = {p["bucket"]: p["value"] for p in timeseries(seeded_db, fall, "visits", "hour")["points"]}
    assert sum(values.values()) == len(selected(dataset, fall.start, fall.end)[0]) > 5
    assert len(values) == 25


@pytest.mark.parametrize("metric", ["visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"])
@pytest.mark.parametrize(("days", "interval"), [
    pytest.param(period("2025-03-30", "2025-03-30"), "hour", id="hour"),
    pytest.param(period("2025-03-27", "2025-10-30"), "day", id="day"),
    pytest.param(period("2025-03-27", "2025-10-30"), "month", id="month"),
])
def test_rollups_give_the_raw_answer(seeded_db, days: Period, interval: str, metric: str) -> None:
    found = timeseries(seeded_db, days, metric, interval, "web")
    raw = timeseries(seeded_db, days, metric, interval, "web", rollups=False)
    assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
    assert found == raw


@pytest.mark.parametrize(("tz", "site", "filters", "collection"), [
    pytest.param("Asia/Kolkata", "web", None, "sessions", id="half-hour edges read sessions"),
    pytest.param("UTC", None, None, "sessions", id="every site reads sessions"),
    pytest.param("UTC", "web", "device==mobile", "sessions", id="a filter reads sessions"),
])
def test_visits_come_from_raw_sessions_when_rollups_cannot_answer(tz, site, filters, collection) -> None:
    spans = buckets(period("2025-03-27", "2025-03-28", tz), "day")
    assert timeseries_query(spans, "visits", site, parse_filters(filters)).collection == collection


@pytest.mark.parametrize(("metric", "interval", "parameter"), [
    pytest.param("sessions", "day", "metric", id="unknown metric"),
    pytest.param("visits", "minute", "interval", id="unknown interval"),
])
def test_bad_metric_or_interval(seeded_db, metric: str, interval: str, parameter: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        timeseries(seeded_db, period("2025-03-30", "2025-03-30"), metric, interval)
    assert info.value.parameter == parameter
