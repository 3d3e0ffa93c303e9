"""Hourly rollups (``rollups_hourly``): counts per site and UTC hour, kept by the writers and
recomputable from the raw collections.

A document per site and hour, ``_id`` = ``"<site>|<YYYY-MM-DDTHH>"`` (``docs/data-model.md``):
``site``, ``hour`` (UTC datetime at the start of the hour), ``visits`` (visit starts in the hour:
``sessions`` by ``started_at``), ``page_views`` (``page_views`` by ``ts``) and ``custom_events``
(``custom_events`` by ``ts``).

The guarantee, and what it rests on:

- The drain (:func:`footfall.stores.mongo_writer.write_batch`) and the log importer add ``$inc``
  upserts only for records *the same write counted*: an event whose insert was new (or that an
  interrupted attempt stored without counting, :mod:`footfall.stores.counting`), a guarded start
  upsert that was not a duplicate, an importer upsert that inserted. A batch written
  again (a drain that crashed before acknowledging, a log imported twice) proves nothing new, so a
  retried batch never counts twice.
- The raw write and the ``$inc`` are two writes: a crash (or MongoDB going away) between them
  leaves that batch's increments out, and the retried batch will not add them (its records are no
  longer new). So rollups can only *under*-count, never over-count; :func:`rebuild_rollups`
  (``footfall rollups rebuild``) recomputes a range exactly from the raw collections.
- A rebuild replaces each hour's counts wholesale: an hour still receiving events while it runs may
  miss or double one batch's increments (the race between its read and the drain's ``$inc``);
  rebuild hours that are over, or run it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.stores.documents import CUSTOM_EVENTS, PAGE_VIEWS, ROLLUPS_HOURLY, SESSIONS

__all__ = [
    "COUNTS",
    "Increments",
    "hour_of",
    "rollup_id",
    "rollup_increments",
    "rollup_updates",
    "apply_increments",
    "rebuild_pipeline",
    "rebuild_rollups",
]

COUNTS = ("visits", "page_views", "custom_events")
DUPLICATE_KEY = 11000
Increments = dict[tuple[str, datetime], dict[str, int]]  # (site, hour) -> {count name: increment}


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in (a timezone-aware datetime at minute 0).

    :param at: a timezone-aware datetime (a naive one is taken as UTC, as pymongo returns them
        without ``tz_aware``).
    """
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


def rollup_id(site: str, hour: datetime) -> str:
    """The ``_id`` of a rollup document: ``"<site>|<YYYY-MM-DDTHH>"`` (UTC)."""
    return f"{site}|{hour_of(hour):%Y-%m-%dT%H}"


def rollup_increments(
    *,
    visits: Iterable[tuple[str, datetime]] = (),
    page_views: Iterable[tuple[str, datetime]] = (),
    custom_events: Iterable[tuple[str, datetime]] = (),
) -> Increments:
    """Group new records into per-hour increments: pure, so tests check it without I/O.

    :param visits: ``(site, started_at)`` of each visit start the write proved new.
    :param page_views: ``(site, ts)`` of each page view the write proved new.
    :param custom_events: ``(site, ts)`` of each custom event the write proved new.
    :return: ``{(site, hour): {"visits": n, "page_views": n, "custom_events": n}}``, one entry per
        bucket that gained something (all three counts present, zeros included).
    """
    increments: Increments = {}
    for name, records in (("visits", visits), ("page_views", page_views), ("custom_events", custom_events)):
        for site, at in records:
            bucket = increments.setdefault((site, hour_of(at)), dict.fromkeys(COUNTS, 0))
            bucket[name] += 1
    return increments


def rollup_updates(increments: Mapping[tuple[str, datetime], Mapping[str, int]]) -> list[UpdateOne]:
    """One ``$inc`` upsert per bucket of :func:`rollup_increments` (``$inc`` by 0 creates a missing
    count, so every document has all three)."""
    return [
        UpdateOne({"_id": rollup_id(site, hour)},
                  {"$inc": {name: int(counts.get(name, 0)) for name in COUNTS},
                   "$setOnInsert": {"site": site, "hour": hour}}, upsert=True)
        for (site, hour), counts in sorted(increments.items())
    ]


def apply_increments(db: Database, increments: Mapping[tuple[str, datetime], Mapping[str, int]]) -> None:
    """Add ``increments`` to ``rollups_hourly`` in one bulk write.

    Two writers creating the same new hour at once can make one upsert fail with a duplicate
    ``_id`` (the other inserted it first): those operations are sent once more, as plain updates of
    the document that now exists, so no increment is lost to the race.

    :raises StoreUnavailable: MongoDB did not answer, or refused an increment (the rollups then
        under-count those records until :func:`rebuild_rollups`).
    """
    ops = rollup_updates(increments)
    for _attempt in range(2):
        if not ops:
            return
        try:
            db[ROLLUPS_HOURLY].bulk_write(ops, ordered=False)
            return
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [error for error in errors if error.get("code") != DUPLICATE_KEY]
            if others or exc.details.get("writeConcernErrors"):
                raise StoreUnavailable(f"MongoDB refused rollup increments: {others[:3] or exc.details}") from exc
            ops = [ops[error["index"]] for error in errors]
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not take the rollup increments: {exc}") from exc
    raise StoreUnavailable(f"rollup increments kept colliding on a duplicate _id: {len(ops)} left")


def _day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    if last < first:
        raise ValueError(f"end {last.isoformat()} is before start {first.isoformat()}")
    return datetime.combine(first, time(), tzinfo=UTC), datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)


def _in_range(at_field: str, start: datetime, end: datetime, site: str | None) -> dict[str, Any]:
    match: dict[str, Any] = {at_field: {"$gte": start, "$lt": end}}
    return match if site is None else {"site": site, **match}


def _counted(collection: str, at_field: str, name: str, start: datetime, end: datetime,
             site: str | None) -> dict[str, Any]:
    """A ``$unionWith`` stage adding one row per record of ``collection`` in range, with a 1 in
    the ``name`` column and 0 in the others."""
    return {"$unionWith": {"coll": collection, "pipeline": [
        {"$match": _in_range(at_field, start, end, site)},
        {"$project": {"_id": 0, "site": 1, "hour": {"$dateTrunc": {"date": f"${at_field}", "unit": "hour"}},
                      **{count: {"$literal": int(count == name)} for count in COUNTS}}},
    ]}}


def rebuild_pipeline(start: datetime, end: datetime, site: str | None) -> list[dict[str, Any]]:
    """The aggregation, run on ``rollups_hourly`` itself, that recomputes ``[start, end)``.

    The rollup documents already in range contribute zeros (so an hour whose records are gone is
    set to 0 rather than left stale); each visit start, page view and custom event in range
    contributes a 1 to its hour; ``$group`` sums them per site and hour and ``$merge`` replaces each
    hour's document. Running it twice gives the same documents (idempotent).

    :param start: inclusive lower bound, UTC, on an hour boundary; ``end``: exclusive.
    :param site: one site, or ``None`` for all.
    :return: the pipeline (standard MongoDB 6.0 stages: ``$unionWith``, ``$dateTrunc``, ``$merge``).
    """
    return [
        {"$match": _in_range("hour", start, end, site)},
        {"$project": {"_id": 0, "site": 1, "hour": 1, **{count: {"$literal": 0} for count in COUNTS}}},
        _counted(SESSIONS, "started_at", "visits", start, end, site),
        _counted(PAGE_VIEWS, "ts", "page_views", start, end, site),
        _counted(CUSTOM_EVENTS, "ts", "custom_events", start, end, site),
        {"$group": {"_id": {"site": "$site", "hour": "$hour"}, **{count: {"$sum": f"${count}"} for count in COUNTS}}},
        {"$project": {"_id": {"$concat": ["$_id.site", "|", {"$dateToString": {
            "date": "$_id.hour", "format": "%Y-%m-%dT%H", "timezone": "UTC"}}]},
            "site": "$_id.site", "hour": "$_id.hour", **{count: 1 for count in COUNTS}}},
        {"$merge": {"into": ROLLUPS_HOURLY, "on": "_id", "whenMatched": "replace", "whenNotMatched": "insert"}},
    ]


def rebuild_rollups(db: Database, first: date, last: date, site: str | None = None) -> int:
    """Recompute the rollups of UTC days ``first``..``last`` (inclusive) exactly from ``sessions``,
    ``page_views`` and ``custom_events`` (``footfall rollups rebuild``).

    :param db: the footfall database.
    :param first: the first UTC day; ``last``: the last one, inclusive.
    :param site: one site, or ``None`` for every site.
    :return: how many rollup documents (hours with a document) the range now holds.
    :raises ValueError: ``last`` is before ``first``.
    :raises StoreUnavailable: MongoDB did not answer or refused the aggregation.
    """
    start, end = _day_bounds(first, last)
    try:
        db[ROLLUPS_HOURLY].aggregate(rebuild_pipeline(start, end, site))
        return db[ROLLUPS_HOURLY].count_documents(_in_range("hour", start, end, site))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not rebuild the rollups: {exc}") from exc
