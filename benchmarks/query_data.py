"""The dashboard-query benchmark's data: one real access log, copied with shifted dates until a fixed
30-day window holds the requested number of page views.

The seed is the semicomplete log imported by :func:`footfall.importer.import_log` itself (1,791 page
views, 1,180 visits, 1,010 visitors over 3.5 days, one site), so every document has exactly the
shape and the enriched fields the importer writes (``docs/data-model.md``). Copy ``k`` of it
(:func:`copy_documents`, pure) moves every instant by :func:`copy_shift` (``k`` × 97 hours, modulo
the hours the window leaves free) and derives fresh ids from ``(k, original id)`` for sessions,
page views and visitors, so each copy's visitors are new people and the window's density grows with
the size while the range stays 30 days. The last copy is cut at a whole visit so that the total is
the requested size or at most one visit's page views above it.

:func:`load` writes the copies with ``insert_many(ordered=False)`` into an empty database, then
creates the indexes (:func:`footfall.stores.mongo_writer.ensure_indexes`; on SecantusDB building
them afterwards is about 4× faster than inserting into indexed collections). The rollups (collection
``rollups``) are then built by :func:`build_rollups` (:func:`footfall.stores.rollup_build.ensure_built`,
what a first drain or importer pass does for a site met for the first time), timed on its own.

The rollup marks (:mod:`footfall.stores.rollup_marks`) are copied as a builder pass leaves them: a
session's ``hours`` move with it, and no ``rollup_dirty`` token is left; a visitor carries
``rolled_first_seen_hour`` (its first-seen hour) and no token. ``ensure_built`` builds the whole
history anyway; with tokens left it would build every hour a second time.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo.database import Database

from footfall.importer import import_log
from footfall.stores.documents import PAGE_VIEWS, SESSIONS, VISITORS
from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.rollup_build import ensure_built
from footfall.stores.rollup_marks import DIRTY, HOURS, ROLLED_FIRST_SEEN, hour_of

__all__ = ["LOG", "SITE", "STRIDE_HOURS", "Seed", "Window", "LoadResult", "read_seed", "copy_shift", "copy_documents",
           "generate", "load", "build_rollups", "window_of"]

LOG = Path(__file__).resolve().parents[1] / "tests" / "data" / "access-logs" / "semicomplete-2015-05.log"
SITE = "semicomplete"
HOST = "semicomplete.com"  # its own referrers are same-site (no referrer_host), as in tests/test_rollups.py
SESSION_TTL = 1800  # seconds, footfall's default
STRIDE_HOURS = 97  # copy k starts k × 97 h later (modulo the free hours): copies spread over the window
BATCH = 5000  # documents per insert_many
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://footfall.invalid/benchmarks/queries")
_INSTANTS = {SESSIONS: ("started_at", "last_seen_at", "first_view_at", "last_view_at"), PAGE_VIEWS: ("ts",),
             VISITORS: ("first_seen_at", "last_seen_at")}


@dataclass(frozen=True)
class Seed:
    """Documents of one site as the importer wrote them (datetimes naive UTC, as pymongo reads them).

    :ivar sessions: ordered by ``started_at`` (a partial copy takes a prefix).
    """

    site: str
    sessions: list[dict[str, Any]]
    page_views: list[dict[str, Any]]
    visitors: list[dict[str, Any]]

    @property
    def instants(self) -> tuple[datetime, datetime]:
        """The earliest and latest instant any document holds (naive UTC)."""
        values = [doc[name] for collection, docs in ((SESSIONS, self.sessions), (PAGE_VIEWS, self.page_views),
                                                     (VISITORS, self.visitors))
                  for doc in docs for name in _INSTANTS[collection] if doc.get(name) is not None]
        return min(values), max(values)


@dataclass(frozen=True)
class Window:
    """Where every copy must land: instants ``[start, end)``, naive UTC (the intersection of the
    ranges the benchmark queries, e.g. June in UTC and June in Europe/Berlin)."""

    start: datetime
    end: datetime

    def placement(self, seed: Seed) -> tuple[timedelta, int]:
        """``(base shift, free hours)``: the shift that moves the seed's first UTC day to the
        window's first day, and how many whole-hour offsets after it keep the seed inside.

        :raises ValueError: the seed does not fit in the window.
        """
        first, last = seed.instants
        base = self.start - datetime.combine(first.date(), datetime.min.time())
        free = int((self.end - timedelta(microseconds=1) - (last + base)) // timedelta(hours=1)) + 1
        if first + base < self.start or free < 1:
            raise ValueError(f"the seed ({first}..{last}) does not fit in {self.start}..{self.end}")
        return base, free


def copy_shift(copy: int, base: timedelta, free_hours: int) -> timedelta:
    """How far copy ``copy`` (0-based) moves every instant: ``base`` + (copy × :data:`STRIDE_HOURS`
    mod ``free_hours``) hours."""
    return base + timedelta(hours=(copy * STRIDE_HOURS) % free_hours)


def _uuid(copy: int, original: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{copy}|{original}")


def copy_documents(seed: Seed, copy: int, shift: timedelta, page_views: int | None = None) -> Seed:
    """Copy ``copy`` of ``seed`` (pure): instants moved by ``shift``, ids derived from ``(copy, id)``.

    Session ids keep the middleware's shape (22 URL-safe base64 characters), page-view and visitor
    ids are UUIDs, a visitor's ``_id`` is ``"<site>|<visitor id>"`` and ``visitor_number`` moves up
    by ``copy`` × the seed's highest number, so every copy's visitors are distinct people. A session's
    ``hours`` move too; ``rollup_dirty`` is dropped and a visitor's ``rolled_first_seen_hour`` is its
    (moved) first-seen hour, as a rollup builder pass leaves them.

    :param page_views: copy only the first visits (by start) until at least this many page views
        (``None``: all of them); their page views and visitors come along.
    :return: the copy (a :class:`Seed`).
    """
    sessions = seed.sessions
    if page_views is not None:
        taken, total = [], 0
        for session in sessions:
            if total >= page_views:
                break
            taken.append(session)
            total += session["page_views"]
        sessions = taken
    session_ids = {s["_id"]: base64.urlsafe_b64encode(_uuid(copy, s["_id"]).bytes).rstrip(b"=").decode("ascii")
                   for s in sessions}
    visitor_ids = {s["visitor_id"]: str(_uuid(copy, s["visitor_id"])) for s in sessions}
    numbers = copy * max((v.get("visitor_number") or 0 for v in seed.visitors), default=0)

    def moved(doc: dict[str, Any], collection: str) -> dict[str, Any]:
        out = dict(doc)
        for name in _INSTANTS[collection]:
            if out.get(name) is not None:
                out[name] = out[name] + shift
        out.pop(DIRTY, None)  # as a builder pass leaves them (module doc)
        if out.get(HOURS) is not None:
            out[HOURS] = [hour + shift for hour in out[HOURS]]
        if collection == VISITORS:
            out.pop(ROLLED_FIRST_SEEN, None)
            if out.get("first_seen_at") is not None:
                out[ROLLED_FIRST_SEEN] = hour_of(out["first_seen_at"]).replace(tzinfo=None)
        out["visitor_id"] = visitor_ids[doc["visitor_id"]]
        if out.get("visitor_number") is not None:
            out["visitor_number"] += numbers
        return out

    new_sessions = [{**moved(s, SESSIONS), "_id": session_ids[s["_id"]]} for s in sessions]
    new_views = [{**moved(v, PAGE_VIEWS), "_id": str(_uuid(copy, v["_id"])), "session_id": session_ids[v["session_id"]]}
                 for v in seed.page_views if v["session_id"] in session_ids]
    new_visitors = [{**(m := moved(v, VISITORS)), "_id": f"{v['site']}|{m['visitor_id']}"}
                    for v in seed.visitors if v["visitor_id"] in visitor_ids]
    return Seed(seed.site, new_sessions, new_views, new_visitors)


def generate(seed: Seed, page_views: int, window: Window) -> Iterator[Seed]:
    """The copies (:func:`copy_documents`) that together hold ``page_views`` page views (the last
    one cut at a whole visit), every instant inside ``window``.

    :raises ValueError: ``page_views`` < 1, an empty seed, or a seed that does not fit the window.
    """
    per_copy = len(seed.page_views)
    if page_views < 1 or per_copy == 0:
        raise ValueError(f"need a positive size and a non-empty seed, got {page_views} and {per_copy} page views")
    base, free = window.placement(seed)
    full, rest = divmod(page_views, per_copy)
    for copy in range(full + (1 if rest else 0)):
        yield copy_documents(seed, copy, copy_shift(copy, base, free), rest if copy == full else None)


def read_seed(db: Database, log: Path = LOG, site: str = SITE) -> Seed:
    """Import ``log`` with footfall's importer into ``db`` (an empty scratch database), read the
    documents back and drop ``db``.

    :raises StoreUnavailable: MongoDB did not answer. :raises OSError: the log cannot be read.
    """
    try:
        import_log(log, db, site=site, session_ttl=SESSION_TTL, host=HOST)
        return Seed(site, list(db[SESSIONS].find().sort([("started_at", 1), ("_id", 1)])),
                    list(db[PAGE_VIEWS].find()), list(db[VISITORS].find()))
    finally:
        db.client.drop_database(db.name)


@dataclass(frozen=True)
class LoadResult:
    """One size's load: what went in and how long each step took (wall seconds).

    :ivar page_views: ``page_views`` documents written; ``sessions``, ``visitors`` likewise.
    """

    copies: int
    page_views: int
    sessions: int
    visitors: int
    insert_seconds: float
    index_seconds: float

    @property
    def seconds(self) -> float:
        """The whole load (inserts and indexes; the rollup build is timed by :func:`build_rollups`)."""
        return self.insert_seconds + self.index_seconds


def load(db: Database, seed: Seed, page_views: int, window: Window,
         progress: Callable[[str], None] = lambda text: None) -> LoadResult:
    """Write the copies of ``seed`` holding ``page_views`` page views into ``db`` (empty), then its
    indexes (the rollups: :func:`build_rollups`).

    :param progress: called with a line of text now and then (a long load takes minutes).
    :return: the :class:`LoadResult`.
    :raises pymongo.errors.PyMongoError: a write failed; :raises StoreUnavailable: the index step failed.
    """
    counts = {SESSIONS: 0, PAGE_VIEWS: 0, VISITORS: 0}
    pending: dict[str, list[dict[str, Any]]] = {name: [] for name in counts}
    started = time.perf_counter()

    def flush(collection: str) -> None:
        if pending[collection]:
            db[collection].insert_many(pending[collection], ordered=False)
            counts[collection] += len(pending[collection])
            pending[collection] = []

    copies = 0
    for copies, part in enumerate(generate(seed, page_views, window), start=1):
        for collection, docs in ((SESSIONS, part.sessions), (PAGE_VIEWS, part.page_views), (VISITORS, part.visitors)):
            pending[collection] += docs
            if len(pending[collection]) >= BATCH:
                flush(collection)
        if copies % 50 == 0:
            progress(f"{copies} copies, {counts[PAGE_VIEWS]:,} page views written, "
                     f"{time.perf_counter() - started:.0f} s")
    for collection in counts:
        flush(collection)
    inserted = time.perf_counter()
    ensure_indexes(db)
    indexed = time.perf_counter()
    return LoadResult(copies, counts[PAGE_VIEWS], counts[SESSIONS], counts[VISITORS],
                      inserted - started, indexed - inserted)


def build_rollups(db: Database, site: str = SITE,
                  progress: Callable[[str], None] = lambda text: None) -> tuple[int, float]:
    """Build ``site``'s rollups from the loaded raw collections
    (:func:`footfall.stores.rollup_build.ensure_built`).

    :param progress: called with a line of text every 5 built days.
    :return: ``(hours built, wall seconds)``.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    started = time.perf_counter()
    done = [0, 0]  # hours, days

    def step(hours: int) -> None:  # called once per UTC day built
        done[0] += hours
        done[1] += 1
        if done[1] % 5 == 0:
            progress(f"rollups: {done[1]} days ({done[0]} hours) built, {time.perf_counter() - started:.0f} s")

    hours = ensure_built(db, site, step)
    return hours, time.perf_counter() - started


def window_of(ranges: list[tuple[datetime, datetime]]) -> Window:
    """The :class:`Window` inside every one of ``ranges`` (timezone-aware instants)."""
    start = max(a for a, _ in ranges).astimezone(UTC).replace(tzinfo=None)
    end = min(b for _, b in ranges).astimezone(UTC).replace(tzinfo=None)
    return Window(start, end)

