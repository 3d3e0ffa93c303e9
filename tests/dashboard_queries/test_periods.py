"""Ranges in the site's time zone, comparison periods and buckets: DST-correct, pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from footfall.dashboard_queries.periods import (
    MAX_BUCKETS,
    Period,
    buckets,
    day_range,
    on_whole_hours,
    parse_day,
    parse_period,
    resolve_timezone,
)
from footfall.errors import InvalidQuery

BERLIN = resolve_timezone("Europe/Berlin")


def berlin(first: str, last: str | None = None) -> Period:
    return Period(date.fromisoformat(first), date.fromisoformat(last or first), BERLIN)


@pytest.mark.parametrize(
    ("day", "hours"),
    [
        pytest.param("2025-03-30", 23, id="spring forward: 23 hours"),
        pytest.param("2025-10-26", 25, id="fall back: 25 hours"),
        pytest.param("2025-06-01", 24, id="an ordinary day"),
    ],
)
def test_a_day_is_local_midnight_to_local_midnight(day: str, hours: int) -> None:
    days = berlin(day)
    assert days.end - days.start == timedelta(hours=hours)
    assert days.start.astimezone(BERLIN).hour == 0 and days.end.astimezone(BERLIN).hour == 0


def test_hourly_buckets_on_the_spring_forward_day() -> None:
    spans = buckets(berlin("2025-03-30"), "hour")
    labels = [span.label for span in spans]
    assert len(spans) == 23
    assert labels[:4] == ["2025-03-30T00:00:00+01:00", "2025-03-30T01:00:00+01:00", "2025-03-30T03:00:00+02:00",
                          "2025-03-30T04:00:00+02:00"]
    assert spans[0].start == datetime(2025, 3, 29, 23, tzinfo=UTC)
    assert all(b.start == a.end and b.end - b.start == timedelta(hours=1)
               for a, b in zip(spans, spans[1:], strict=False))


def test_hourly_buckets_on_the_fall_back_day() -> None:
    labels = [span.label for span in buckets(berlin("2025-10-26"), "hour")]
    assert len(labels) == 25
    assert labels[2:4] == ["2025-10-26T02:00:00+02:00", "2025-10-26T02:00:00+01:00"]
    assert len(set(labels)) == 25


def test_daily_buckets_across_both_changes() -> None:
    spans = buckets(berlin("2025-03-29", "2025-03-31"), "day")
    assert [s.label for s in spans] == ["2025-03-29", "2025-03-30", "2025-03-31"]
    assert [s.end - s.start for s in spans] == [timedelta(hours=24), timedelta(hours=23), timedelta(hours=24)]
    assert [s.end - s.start for s in buckets(berlin("2025-10-26"), "day")] == [timedelta(hours=25)]


def test_weekly_buckets_are_iso_weeks_clipped_to_the_range() -> None:
    spans = buckets(berlin("2025-03-26", "2025-04-08"), "week")  # a Wednesday to a Tuesday
    assert [s.label for s in spans] == ["2025-03-26", "2025-03-31", "2025-04-07"]
    assert spans[1].start == datetime(2025, 3, 30, 22, tzinfo=UTC)  # Monday 00:00 CEST
    assert spans[0].end - spans[0].start == timedelta(days=5, hours=-1)  # Wed..Sun, minus the DST hour
    assert spans[-1].end == berlin("2025-04-08").end


def test_monthly_buckets_start_on_the_first() -> None:
    spans = buckets(berlin("2025-01-15", "2025-03-10"), "month")
    assert [s.label for s in spans] == ["2025-01-15", "2025-02-01", "2025-03-01"]
    assert spans[1].start == datetime(2025, 1, 31, 23, tzinfo=UTC)


def test_a_zone_that_skips_midnight_starts_the_day_at_its_first_instant() -> None:
    santiago = resolve_timezone("America/Santiago")  # 2024-09-08: 00:00 -04 jumps to 01:00 -03
    day = Period(date(2024, 9, 8), date(2024, 9, 8), santiago)
    assert day.start == datetime(2024, 9, 8, 4, tzinfo=UTC)
    assert day.end - day.start == timedelta(hours=23)


def test_too_many_buckets_is_refused_naming_the_interval() -> None:
    assert len(buckets(Period(date(2024, 1, 1), date(2024, 12, 31)), "hour")) == 366 * 24
    with pytest.raises(InvalidQuery) as info:
        buckets(Period(date(2020, 1, 1), date(2024, 12, 31)), "hour")
    assert info.value.parameter == "interval" and str(MAX_BUCKETS) in info.value.message


@pytest.mark.parametrize(
    ("first", "last", "compare", "expected"),
    [
        pytest.param("2025-03-10", "2025-03-16", "previous_period", ("2025-03-03", "2025-03-09"), id="a week before"),
        pytest.param("2025-03-01", "2025-03-31", "previous_period", ("2025-01-29", "2025-02-28"), id="31 days"),
        pytest.param("2025-03-01", "2025-03-31", "year_over_year", ("2024-03-01", "2024-03-31"), id="a year before"),
        pytest.param("2024-02-29", "2024-03-01", "year_over_year", ("2023-02-28", "2023-03-01"), id="29 February"),
    ],
)
def test_the_previous_period_has_as_many_days(first: str, last: str, compare: str, expected: tuple[str, str]) -> None:
    current = berlin(first, last)
    before = current.previous(compare)
    assert (before.first.isoformat(), before.last.isoformat()) == expected
    assert before.days == current.days


def test_an_unknown_compare_names_the_parameter() -> None:
    with pytest.raises(InvalidQuery) as info:
        berlin("2025-03-01").previous("last_month")
    assert info.value.parameter == "compare"


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/berlin", "../../etc/passwd", "Europe/Berlin\x00", ""])
def test_an_unknown_time_zone_is_refused(name: str) -> None:
    if name == "":
        assert resolve_timezone(name).key == "UTC"  # empty means the default
        return
    with pytest.raises(InvalidQuery) as info:
        resolve_timezone(name)
    assert info.value.parameter == "tz" and "IANA" in info.value.message


@pytest.mark.parametrize("raw", ["2025-02-30", "20250301", "2025-3-01", "１２３４-01-01", "0001-01-01", "yesterday"])
def test_malformed_days_name_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_day("start", raw)
    assert info.value.parameter == "start" and "start" in info.value.message


def test_parse_period_defaults_to_today_in_the_zone() -> None:
    now = datetime(2025, 6, 1, 22, 30, tzinfo=UTC)  # already 2 June in Berlin
    assert parse_period(None, None, "Europe/Berlin", now).first == date(2025, 6, 2)
    assert parse_period(None, None, None, now).first == date(2025, 6, 1)
    assert parse_period(None, None, None, now, default_tz="Asia/Tokyo").tz.key == "Asia/Tokyo"
    assert parse_period("2025-05-01", None, "UTC", now).last == date(2025, 6, 1)
    with pytest.raises(InvalidQuery) as info:
        parse_period("2025-05-02", "2025-05-01", "UTC", now)
    assert info.value.parameter == "end"


def test_day_range_keeps_its_utc_default() -> None:
    days = day_range(date(2026, 3, 1), None, today=date(2026, 3, 10))
    assert (days.first, days.last, days.start) == (date(2026, 3, 1), date(2026, 3, 10),
                                                    datetime(2026, 3, 1, tzinfo=UTC))


def test_whole_hours() -> None:
    assert on_whole_hours(berlin("2025-03-30").start, berlin("2025-03-30").end)
    kolkata = Period(date(2025, 3, 30), date(2025, 3, 30), resolve_timezone("Asia/Kolkata"))
    assert not on_whole_hours(kolkata.start)


def test_a_previous_period_before_year_one_is_refused() -> None:
    """Found by schemathesis: ``end=4053-01-01`` with today's start compared with the period before."""
    with pytest.raises(InvalidQuery) as info:
        Period(date(2026, 1, 1), date(4053, 1, 1)).previous("previous_period")
    assert info.value.parameter == "compare" and "before year 1" in info.value.message
