"""Building the rollups (collection ``rollups``) from the raw collections, exactly.

What is stored (README, "Storage"): one document per site, level, bucket and kind,
``_id`` = ``"<site>|<level>|<YYYY-MM-DDTHH>|<kind>"``, with ``site``, ``level`` (``"hour"`` or
``"day"``: a UTC hour or UTC day), ``at`` (the bucket's start, UTC), ``kind`` and:

- for ``kind`` ``"total"`` or a dimension (:data:`footfall.stores.cells.KINDS`): ``rows``, the cells of
  the bucket, one per value (:func:`footfall.stores.cells.encode_rows`; the total has the one value
  ``None``);
- for ``kind`` ``"first_seen"``: ``u``, the bitmap of the numbers of the visitors whose
  ``first_seen_at`` is in the bucket.

An hour is computed from the raw documents of that hour
(:func:`footfall.stores.rollup_read.compute_hours`); a day is the merge of
its 24 hours. Rollup documents are *replaced*, never incremented, so building an hour twice gives the
same document, and a crash anywhere leaves at worst an hour still marked dirty.

Which hours to build is told by the raw documents (:mod:`footfall.stores.rollup_marks`): the ``hours``
of the ``sessions`` that carry a ``rollup_dirty`` token, and the first-seen hours (now and as last
built) of the ``visitors`` that carry one. :func:`refresh` builds those hours, then removes exactly the
tokens it read; a write that came in meanwhile left a new token and is built again on the next pass.
A site's rollups are used by queries only once its whole history has been built once
(:func:`ensure_built`, state in ``rollup_sites``).

Visitor numbers are the ``visitors`` collection's (one per visitor per site, never changed once set),
joined by ``_id`` = ``"<site>|<visitor id>"``; visitors without one are numbered first
(:func:`footfall.stores.visitor_numbers.backfill`). An hour with a visit whose visitor has no
``visitors`` document yet (the drain writes it right after the session) is left dirty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pymongo import DeleteOne, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError
from pyroaring import BitMap

from footfall.errors import StoreUnavailable
from footfall.stores.cells import (
    FIRST_SEEN,
    TOTAL,
    Cell,
    Value,
    encode_bitmap,
    encode_rows,
)
from footfall.stores.documents import (
    CUSTOM_EVENTS,
    DIRTY_MARK,
    PAGE_VIEWS,
    ROLLUP_SITES,
    ROLLUPS,
    SESSIONS,
    VISITORS,
)
from footfall.stores.rollup_lease import LEASE_SECONDS, _Lease, _leased
from footfall.stores.rollup_marks import CLOCK_SKEW, DIRTY, HOURS, ROLLED_FIRST_SEEN, hour_of, token_prefix
from footfall.stores.rollup_read import (
    ALL_KINDS,
    DAY,
    HOUR,
    HourCells,
    as_utc,
    cells_from_docs,
    compute_hours,
    day_start,
    is_number,
    merge_cells,
    read_docs,
    rollup_doc_id,
)
from footfall.stores.visitor_numbers import backfill

__all__ = ["HourCells", "rollup_doc_id", "compute_hours",
           "dirty_hours", "refresh", "rebuild", "ensure_built", "is_built",
           "read_docs", "cells_from_docs", "rollup_sites", "merge_cells", "build_range", "known_sites"]

log = logging.getLogger("footfall.rollups")



# -- writing ------------------------------------------------------------------------------------------

def _doc(site: str, level: str, at: datetime, kind: str, rows: dict[Value, Cell] | None,
         first_seen: BitMap | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": rollup_doc_id(site, level, at, kind), "site": site, "level": level, "at": at,
                           "kind": kind}
    if kind == FIRST_SEEN:
        doc["u"] = encode_bitmap(first_seen if first_seen is not None else BitMap())
    else:
        doc["rows"] = encode_rows(rows or {})
    return doc


def _ops(site: str, level: str, at: datetime, cells: HourCells, stored: bool) -> list[ReplaceOne | DeleteOne]:
    """Replace the bucket's documents with ``cells``; when its day has ``stored`` documents, delete
    the kinds it no longer has (a bucket with nothing, in a day with nothing stored, needs nothing)."""
    ops: list[ReplaceOne | DeleteOne] = []
    for kind in ALL_KINDS:
        doc_id = rollup_doc_id(site, level, at, kind)
        rows = cells.kinds.get(kind)
        if kind == FIRST_SEEN and cells.first_seen:
            ops.append(ReplaceOne({"_id": doc_id}, _doc(site, level, at, kind, None, cells.first_seen), upsert=True))
        elif kind != FIRST_SEEN and rows:
            ops.append(ReplaceOne({"_id": doc_id}, _doc(site, level, at, kind, rows, None), upsert=True))
        elif stored:
            ops.append(DeleteOne({"_id": doc_id}))
    return ops


def _day_stored(db: Database, site: str, day: datetime) -> bool:
    """Whether the day has rollup documents: a day with any stored hour has its ``total`` day
    document (written in the same bulk write), so one point read tells."""
    return db[ROLLUPS].find_one({"_id": rollup_doc_id(site, "day", day, TOTAL)}, {"_id": 1}) is not None


def _write(db: Database, ops: list[Any]) -> None:
    try:
        for i in range(0, len(ops), 1000):
            db[ROLLUPS].bulk_write(ops[i:i + 1000], ordered=False)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not take the rollups: {exc}") from exc


def build_range(db: Database, site: str, start: datetime, end: datetime,
                progress: Callable[[int], None] | None = None,
                renew: Callable[[], None] | None = None) -> set[datetime]:
    """Compute and store every hour of ``[start, end)`` (whole UTC hours) and the days they are in,
    one UTC day at a time (a day's document is the merge of its 24 hours: those just computed, and
    the stored ones outside the range).

    :param progress: called with the number of hours just built.
    :param renew: called before each day (the builder's lease); raises to stop the build.
    :return: the hours left out because a visit's visitor had no number yet (they stay dirty, and
        ``rollup_sites.pending`` lists them for the queries and the next pass).
    :raises StoreUnavailable: MongoDB did not answer.
    """
    left_out: set[datetime] = set()
    day = day_start(start)
    while day < end:
        lo, hi = max(start, day), min(end, day + DAY)
        if renew is not None:
            renew()
        try:
            computed = compute_hours(db, site, lo, hi)
            existing = _day_stored(db, site, day)
            whole_day = dict(computed)
            if (lo, hi) != (day, day + DAY):  # the day's other hours, as stored
                stored = cells_from_docs(read_docs(db, site, ALL_KINDS, "hour", day, day + DAY))
                whole_day = {**stored, **computed}
            ops: list[Any] = []
            for hour, cells in computed.items():
                if cells.complete:
                    ops += _ops(site, "hour", hour, cells, existing)
                else:
                    left_out.add(hour)
            ops += _ops(site, "day", day, merge_cells(c for h, c in whole_day.items() if h not in left_out), existing)
            _write(db, ops)
            _note_pending(db, site, done=[h for h, c in computed.items() if c.complete],
                          pending=[h for h, c in computed.items() if not c.complete])
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not answer while building the rollups: {exc}") from exc
        if progress is not None:
            progress(len(computed))
        day += DAY
    return left_out


def _note_pending(db: Database, site: str, *, done: list[datetime], pending: list[datetime]) -> None:
    """Keep ``rollup_sites.pending``: the hours left out of a build (a visitor without a number or a
    ``visitors`` document yet), which queries read raw and the next pass builds again."""
    try:
        if pending:
            db[ROLLUP_SITES].update_one({"_id": site}, {"$addToSet": {"pending": {"$each": pending}}}, upsert=True)
        if done:
            db[ROLLUP_SITES].update_one({"_id": site, "pending": {"$in": done}}, {"$pull": {"pending": {"$in": done}}})
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc


def _pending(db: Database, site: str) -> set[datetime]:
    doc = db[ROLLUP_SITES].find_one({"_id": site}, {"pending": 1}) or {}
    return {hour_of(at) for at in doc.get("pending") or []}


def _runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as maximal runs of consecutive hours ``[(start, end)]``."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


# -- what is dirty ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _DirtySession:
    id: Any
    token: str
    hours: frozenset[datetime]
    visitor_id: Any
    number: Any


@dataclass(frozen=True, slots=True)
class _DirtyVisitor:
    id: Any
    token: str
    visitor_id: Any
    number: Any
    first: datetime | None
    rolled: datetime | None

    def hours(self) -> set[datetime]:
        return {hour_of(at) for at in (self.first, self.rolled) if at is not None}


@dataclass
class _Dirty:
    read_at: datetime
    sessions: list[_DirtySession] = field(default_factory=list)
    visitors: list[_DirtyVisitor] = field(default_factory=list)

    def hours(self) -> set[datetime]:
        found = {hour for session in self.sessions for hour in session.hours}
        for visitor in self.visitors:
            found |= visitor.hours()
        return found


def _read_dirty(db: Database, site: str) -> _Dirty:
    dirty = _Dirty(read_at=datetime.now(UTC))
    mark = {**DIRTY_MARK, "site": site}
    for doc in db[SESSIONS].find(mark, {DIRTY: 1, HOURS: 1, "started_at": 1, "visitor_id": 1, "visitor_number": 1}):
        hours = list(doc.get(HOURS) or [])
        if doc.get("started_at") is not None:  # a session written before the marks existed
            hours.append(doc["started_at"])
        dirty.sessions.append(_DirtySession(doc["_id"], doc[DIRTY], frozenset(hour_of(h) for h in hours),
                                            doc.get("visitor_id"), doc.get("visitor_number")))
    for doc in db[VISITORS].find(mark, {DIRTY: 1, "first_seen_at": 1, ROLLED_FIRST_SEEN: 1, "visitor_number": 1,
                                        "visitor_id": 1}):
        dirty.visitors.append(_DirtyVisitor(doc["_id"], doc[DIRTY], doc.get("visitor_id"), doc.get("visitor_number"),
                                            doc.get("first_seen_at"), doc.get(ROLLED_FIRST_SEEN)))
    return dirty


def _align_numbers(db: Database, site: str, dirty: _Dirty) -> set[datetime]:
    """Give each dirty session its visitor's number from ``visitors`` where it carries another one (a
    visitor renumbered after Redis lost its cache, see README "Visitor numbers": ``visitors`` keeps
    the first), so a visitor is one bit in every bitmap.

    :return: the hours of the sessions whose visitor has no ``visitors`` document (or no number) yet:
        they are not built now.
    """
    numbers = {v.visitor_id: v.number for v in dirty.visitors}
    wanted = sorted({s.visitor_id for s in dirty.sessions if s.visitor_id is not None} - numbers.keys())
    for i in range(0, len(wanted), 500):
        ids = [f"{site}|{vid}" for vid in wanted[i:i + 500]]
        numbers.update({doc["visitor_id"]: doc.get("visitor_number") for doc in db[VISITORS].find(
            {"_id": {"$in": ids}}, {"visitor_id": 1, "visitor_number": 1})})
    waiting: set[datetime] = set()
    fixes = []
    for session in dirty.sessions:
        number = numbers.get(session.visitor_id)
        if not is_number(number):
            waiting |= session.hours
        elif number != session.number:
            fixes.append(UpdateOne({"_id": session.id}, {"$set": {"visitor_number": number}}))
    if fixes:
        db[SESSIONS].bulk_write(fixes, ordered=False)
    return waiting


def dirty_hours(db: Database, site: str) -> set[datetime]:
    """The hours of ``site`` whose stored rollups may be behind the raw collections (UTC hours).

    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        return _read_dirty(db, site).hours() | _pending(db, site)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc


def _dirty_sites(db: Database) -> list[str]:
    return sorted(set(db[SESSIONS].distinct("site", DIRTY_MARK)) | set(db[VISITORS].distinct("site", DIRTY_MARK)))


def refresh_site(db: Database, site: str) -> int:
    """Build the dirty hours of ``site`` and clear the marks read (one pass), unless another builder
    is building that site right now (then this pass leaves it to that one).

    :return: hours built.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    with _leased(db, site, wait=0) as lease:
        return 0 if lease is None else _refresh_site(db, site, lease)


def _clear(db: Database, site: str, dirty: _Dirty, left_out: set[datetime]) -> None:
    """Remove the marks read in ``dirty`` (read at ``dirty.read_at``), but not those of sessions with
    an hour ``left_out``; a visitor's first-seen hour is noted as built.

    Marks whose token is older than the read less :data:`~footfall.stores.rollup_marks.CLOCK_SKEW`
    were all read (a later write carries a later time), so they go in one ``update_many`` per
    collection; the younger ones one by one, each only if its token is still the one read.
    """
    cutoff = token_prefix(dirty.read_at - timedelta(seconds=CLOCK_SKEW))
    old = {DIRTY: {"$gt": "", "$lt": cutoff}, "site": site}
    kept = [session.id for session in dirty.sessions if session.hours & left_out]
    db[SESSIONS].update_many({**old, "_id": {"$nin": kept}}, {"$unset": {DIRTY: ""}})
    clears = [UpdateOne({"_id": session.id, DIRTY: session.token}, {"$unset": {DIRTY: ""}})
              for session in dirty.sessions if not session.hours & left_out and session.token >= cutoff]
    for i in range(0, len(clears), 1000):
        db[SESSIONS].bulk_write(clears[i:i + 1000], ordered=False)
    waiting = [visitor.id for visitor in dirty.visitors
               if not is_number(visitor.number) or visitor.first is None or hour_of(visitor.first) in left_out]
    db[VISITORS].update_many(
        {**old, "_id": {"$nin": waiting}, "visitor_number": {"$type": "number"}, "first_seen_at": {"$type": "date"}},
        [{"$set": {ROLLED_FIRST_SEEN: {"$dateTrunc": {"date": "$first_seen_at", "unit": "hour"}}, DIRTY: "$$REMOVE"}}])
    visitor_clears = [
        UpdateOne({"_id": visitor.id, DIRTY: visitor.token},
                  {"$unset": {DIRTY: ""}, "$set": {ROLLED_FIRST_SEEN: hour_of(visitor.first)}})
        for visitor in dirty.visitors
        if visitor.first is not None and visitor.id not in waiting and visitor.token >= cutoff]
    for i in range(0, len(visitor_clears), 1000):
        db[VISITORS].bulk_write(visitor_clears[i:i + 1000], ordered=False)


def _refresh_site(db: Database, site: str, lease: _Lease) -> int:
    try:
        dirty = _read_dirty(db, site)
        if any(not is_number(visitor.number) for visitor in dirty.visitors):
            backfill(db, site)
            dirty = _read_dirty(db, site)
        left_out = _align_numbers(db, site, dirty)
        _note_pending(db, site, done=[], pending=sorted(left_out))
        built = 0
        for start, end in _runs(dirty.hours() | _pending(db, site)):
            for lo, hi in _runs([start + HOUR * k for k in range(int((end - start) / HOUR))
                                 if start + HOUR * k not in left_out]):
                left_out |= build_range(db, site, lo, hi, renew=lease.renew)
                built += int((hi - lo) / HOUR)
        _clear(db, site, dirty, left_out)
        return built
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer while refreshing the rollups: {exc}") from exc


def is_built(db: Database, site: str) -> bool:
    """Whether ``site``'s whole history has been built once (queries may use its rollups).

    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        return db[ROLLUP_SITES].find_one({"_id": site, "built_at": {"$exists": True}}) is not None
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc


def _extent(db: Database, site: str) -> tuple[datetime, datetime] | None:
    """The first and last instants of ``site``'s raw data, or ``None`` when it has none."""
    firsts: list[datetime] = []
    lasts: list[datetime] = []
    for collection, at in ((SESSIONS, "started_at"), (PAGE_VIEWS, "ts"), (CUSTOM_EVENTS, "ts"),
                           (VISITORS, "first_seen_at")):
        for direction, found in ((1, firsts), (-1, lasts)):
            doc = db[collection].find_one({"site": site, at: {"$type": "date"}}, {at: 1}, sort=[(at, direction)])
            if doc is not None:
                found.append(as_utc(doc[at]))
    return (min(firsts), max(lasts)) if firsts else None


def ensure_built(db: Database, site: str, progress: Callable[[int], None] | None = None) -> int:
    """Build ``site``'s whole history once (a site first met, or data from before the rollups), then
    mark it built. Writes during the build leave marks that :func:`refresh_site` builds right after.

    :return: the hours built (0 when it was built before).
    :raises StoreUnavailable: MongoDB did not answer.
    """
    if is_built(db, site):
        return 0
    built = 0
    with _leased(db, site, wait=LEASE_SECONDS) as lease:
        if lease is None:
            raise StoreUnavailable(f"another rollup builder held site {site!r} for {LEASE_SECONDS} s")
        if is_built(db, site):  # built by the builder we waited for
            return 0
        try:
            backfill(db, site)  # visitors from before numbering, or whose numbering failed
            before = _read_dirty(db, site)  # marks the whole build covers: cleared after it, not built twice
            left_out = _align_numbers(db, site, before)
            extent = _extent(db, site)
            if extent is not None:
                start, end = hour_of(extent[0]), hour_of(extent[1]) + HOUR
                left_out |= build_range(db, site, start, end, progress, renew=lease.renew)
                built = int((end - start) / HOUR)
            _note_pending(db, site, done=[], pending=sorted(left_out))
            _clear(db, site, before, left_out)
            built += _refresh_site(db, site, lease)  # what was written during the build
            db[ROLLUP_SITES].update_one({"_id": site}, {"$set": {"built_at": datetime.now(UTC)}}, upsert=True)
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not answer while building the rollups: {exc}") from exc
    return built


def refresh(db: Database, site: str | None = None, *, every_site: bool = False) -> int:
    """One pass of the rollup builder: build every site first met (:func:`ensure_built`), then every
    dirty hour (:func:`refresh_site`). Run by the drain every few seconds, and by the importer at its end.

    :param site: one site, or ``None`` for every site with marks.
    :param every_site: also every site that has sessions (a scan of the ``site`` index, once per drain
        process: sites with data from before the rollups and no new traffic get built too).
    :return: hours built.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        sites = [site] if site is not None else _dirty_sites(db)
        if every_site and site is None:
            sites = sorted(set(sites) | set(rollup_sites(db, None)))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    built = 0
    for name in sites:
        built += ensure_built(db, name) or refresh_site(db, name)
    return built


def known_sites(db: Database) -> list[str]:
    """The sites with data, sorted, without scanning the raw collections: those built
    (``rollup_sites``) and those with marks not built yet; the scan (:func:`rollup_sites`) only when
    no site was ever built.

    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        built = {doc["_id"] for doc in db[ROLLUP_SITES].find({"built_at": {"$type": "date"}}, {"_id": 1})}
        if not built:
            return rollup_sites(db, None)
        return sorted(built | set(_dirty_sites(db)))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    if last < first:
        raise ValueError(f"end {last.isoformat()} is before start {first.isoformat()}")
    return datetime.combine(first, time(), tzinfo=UTC), datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC)


def rollup_sites(db: Database, site: str | None) -> list[str]:
    """``[site]``, or every site with raw data when ``site`` is ``None``.

    :raises StoreUnavailable: MongoDB did not answer.
    """
    if site is not None:
        return [site]
    try:
        return sorted(set(db[SESSIONS].distinct("site")) | set(db[PAGE_VIEWS].distinct("site")))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc


def rebuild(db: Database, first: date, last: date, site: str | None = None,
            progress: Callable[[int], None] | None = None) -> int:
    """Recompute the rollups of UTC days ``first``..``last`` (inclusive) from the raw collections
    (``footfall rollups rebuild``). Idempotent: a second run writes the same documents.

    :param progress: called with the number of hours just built.
    :return: hours built (days × 24 × sites).
    :raises ValueError: ``last`` is before ``first``. :raises StoreUnavailable: MongoDB did not answer.
    """
    start, end = day_bounds(first, last)
    built = 0
    try:
        for name in rollup_sites(db, site):
            with _leased(db, name, wait=LEASE_SECONDS) as lease:
                if lease is None:
                    raise StoreUnavailable(f"another rollup builder held site {name!r} for {LEASE_SECONDS} s")
                build_range(db, name, start, end, progress, renew=lease.renew)
            built += int((end - start) / HOUR)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer while rebuilding the rollups: {exc}") from exc
    return built
