"""Date ranges in a site's time zone, comparison periods and time buckets. Pure: no I/O, no clock.

A dashboard range is a run of whole local days, ``first`` .. ``last`` inclusive, in an IANA time zone
(``tz=Europe/Berlin``; ``FOOTFALL_TIMEZONE``, default ``UTC``). As instants it is ``[start, end)``:
``start`` is the first instant of ``first`` (local midnight) and ``end`` the first instant of the day
after ``last``, both as UTC datetimes (docs/data-model.md, "Definitions"). Conversions go through
:mod:`zoneinfo`, so a day is local midnight to local midnight, 23 or 25 hours long across a DST change;
where a zone skips midnight itself, the day starts at the first instant that exists.

Buckets (issue 6, "Ranges and buckets are in the site's timezone, DST-correct"):

- ``hour``: real hours (3600 s) from ``start``, labelled with their local start time and offset
  (``2025-10-26T02:00:00+02:00`` then ``2025-10-26T02:00:00+01:00``);
- ``day``: local midnight to local midnight, labelled ``YYYY-MM-DD``;
- ``week``: ISO weeks, starting Monday at local midnight;
- ``month``: calendar months from the 1st at local midnight.

Weeks and months are clipped to the range: the first bucket starts at ``start`` and the last ends at
``end``, and each bucket is labelled with its first local day inside the range (a range starting on
a Wednesday has a first weekly bucket labelled with that Wednesday, then Mondays).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal, get_args
from zoneinfo import ZoneInfo, available_timezones

from footfall.errors import InvalidQuery

__all__ = [
    "Bucket", "Compare", "Interval", "Period", "MAX_BUCKETS", "COMPARES", "INTERVALS", "buckets", "day_range",
    "parse_day", "parse_period", "resolve_timezone", "on_whole_hours", "local_midnight",
]

Interval = Literal["hour", "day", "week", "month"]
Compare = Literal["previous_period", "year_over_year"]
INTERVALS: tuple[str, ...] = get_args(Interval)
COMPARES: tuple[str, ...] = get_args(Compare)
MAX_BUCKETS = 10_000  # a year of hours (8784) fits; more is a request for a longer interval
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
UTC_ZONE = ZoneInfo("UTC")


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def resolve_timezone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The :class:`~zoneinfo.ZoneInfo` for an IANA name such as ``Europe/Berlin``.

    :param name: the requested zone; ``None`` or ``""`` means ``default``.
    :param default: the zone when none is requested (``FOOTFALL_TIMEZONE``).
    :return: the zone.
    :raises InvalidQuery: (parameter ``tz``) the name is not in the IANA database this Python sees.
    """
    chosen = name or default
    if chosen not in _zone_names():
        raise InvalidQuery("tz", f"tz must be an IANA time zone name such as Europe/Berlin or UTC, got {chosen[:64]!r}")
    return ZoneInfo(chosen)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of local calendar day ``day`` in ``tz``, as a UTC datetime.

    Where ``tz`` skips local midnight (a DST change at 00:00), ``fold=0`` takes the offset in force
    before the gap (PEP 495), which is exactly the instant the day begins.
    """
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """Inclusive local days ``first`` .. ``last`` in ``tz``, i.e. the instants ``[start, end)``.

    :ivar first: the first day (local calendar date).
    :ivar last: the last day, inclusive.
    :ivar tz: the site's time zone.
    """

    first: date
    last: date
    tz: ZoneInfo = UTC_ZONE

    @property
    def start(self) -> datetime:
        """Local midnight of ``first``, as a UTC datetime (inclusive)."""
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """Local midnight of the day after ``last``, as a UTC datetime (exclusive)."""
        return local_midnight(self.last + timedelta(days=1), self.tz)

    @property
    def days(self) -> int:
        """How many local days the period spans."""
        return (self.last - self.first).days + 1

    def previous(self, compare: str = "previous_period") -> Period:
        """The period this one is compared with, of the same number of days.

        :param compare: ``previous_period`` (the days just before ``first``) or ``year_over_year``
            (the same number of days from the same date a year earlier; 29 February becomes the 28th).
        :return: the earlier :class:`Period`, in the same zone.
        :raises InvalidQuery: (parameter ``compare``) another value, or an earlier period that would
            begin before year 1.
        """
        if compare not in COMPARES:
            raise InvalidQuery("compare", f"compare must be one of {', '.join(COMPARES)}, got {str(compare)[:40]!r}")
        try:
            if compare == "previous_period":
                return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz)
            shifted = _year_earlier(self.first)
            return Period(shifted, shifted + timedelta(days=self.days - 1), self.tz)
        except (OverflowError, ValueError):
            raise InvalidQuery("compare", f"the {compare} of {self.first}..{self.last} would begin before year 1; "
                                          "pick a shorter range") from None


def _year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


DayRange = Period  # the name issue 2's code used for a UTC day range


def parse_day(name: str, raw: str | None) -> date | None:
    """Read a query parameter as a date ``YYYY-MM-DD`` (1970-01-01 .. 9998-12-31).

    :param name: the parameter's name, for the message.
    :param raw: its text; ``None`` or ``""`` gives ``None``.
    :raises InvalidQuery: (parameter ``name``) anything else.
    """
    if not raw:
        return None
    try:
        if len(raw) != 10 or raw[4] != "-" or raw[7] != "-" or not raw.replace("-", "").isascii():
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidQuery(name, f"{name} must be a date YYYY-MM-DD, got {raw[:40]!r}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidQuery(name, f"{name} must be between {FIRST_DAY} and {LAST_DAY}, got {raw}")
    return day


def day_range(first: date | None, last: date | None, today: date, tz: ZoneInfo = UTC_ZONE) -> Period:
    """The inclusive day range with the dashboard's defaults ("default today").

    :param first: the first day; when ``None``, today (or ``last``, if that is earlier).
    :param last: the last day; when ``None``, today (or ``first``, if that is later).
    :param today: the current date in ``tz`` (passed in: no clock here).
    :param tz: the site's time zone (UTC by default, as ``/analytics/stats`` counts).
    :raises InvalidQuery: (parameter ``end``) ``last`` is before ``first`` (the message gives both).
    """
    if first is None:
        first = today if last is None else min(last, today)
    if last is None:
        last = max(first, today)
    if last < first:
        raise InvalidQuery("end", f"end {last.isoformat()} is before start {first.isoformat()}")
    return Period(first, last, tz)


def parse_period(start: str | None, end: str | None, tz: str | None, now: datetime,
                 default_tz: str = "UTC") -> Period:
    """A :class:`Period` from the API's ``start``, ``end`` and ``tz`` parameters.

    :param start: first day ``YYYY-MM-DD`` or ``None`` (today).
    :param end: last day, inclusive, or ``None`` (today, or ``start`` when that is later).
    :param tz: IANA zone name or ``None`` for ``default_tz``.
    :param now: the current instant (timezone-aware); "today" is its date in the zone.
    :param default_tz: the zone when ``tz`` is absent (``FOOTFALL_TIMEZONE``).
    :raises InvalidQuery: naming ``start``, ``end`` or ``tz``.
    """
    zone = resolve_timezone(tz, default_tz)
    return day_range(parse_day("start", start), parse_day("end", end), now.astimezone(zone).date(), zone)


@dataclass(frozen=True, slots=True)
class Bucket:
    """One time bucket: instants ``[start, end)`` (UTC datetimes) and its label (see the module doc)."""

    label: str
    start: datetime
    end: datetime


def _next_boundary(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7 - day.weekday())
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)  # month


def buckets(period: Period, interval: str) -> tuple[Bucket, ...]:
    """The buckets of ``period`` for ``interval``, in order, tiling ``[start, end)`` exactly.

    :param period: the range.
    :param interval: ``hour``, ``day``, ``week`` or ``month``.
    :return: the buckets (DST-correct, see the module doc).
    :raises InvalidQuery: (parameter ``interval``) an unknown interval, or more than
        :data:`MAX_BUCKETS` buckets.
    """
    if interval not in INTERVALS:
        raise InvalidQuery("interval", f"interval must be one of {', '.join(INTERVALS)}, got {str(interval)[:40]!r}")
    start, end = period.start, period.end
    too_many = InvalidQuery("interval", f"interval={interval} gives more than {MAX_BUCKETS} buckets for "
                                        f"{period.first}..{period.last}; pick a longer interval or a shorter range")
    if interval == "hour":
        hours = -int((start - end).total_seconds() // 3600)  # a last partial hour (30-minute DST) counts
        if hours > MAX_BUCKETS:
            raise too_many
        instants = [start + timedelta(hours=k) for k in range(hours)]
        return tuple(Bucket(t.astimezone(period.tz).isoformat(), t, min(t + timedelta(hours=1), end))
                     for t in instants)
    if interval == "day" and period.days > MAX_BUCKETS:
        raise too_many
    days = [period.first]
    while (following := _next_boundary(days[-1], interval)) <= period.last:
        days.append(following)
        if len(days) > MAX_BUCKETS:
            raise too_many
    edges = [local_midnight(day, period.tz) for day in days] + [end]
    return tuple(Bucket(day.isoformat(), edges[i], edges[i + 1]) for i, day in enumerate(days))


def on_whole_hours(*instants: datetime) -> bool:
    """Whether every instant is a whole UTC hour (then hourly rollups can answer for the range).

    True for every range and day/week/month bucket in a zone whose offsets are whole hours.
    """
    return all(t.astimezone(UTC).minute == 0 and t.second == 0 and t.microsecond == 0 for t in instants)
