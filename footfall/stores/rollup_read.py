"""The rollups' reads: raw documents of a range of hours turned into cells, and rollup documents
turned back into cells. Used by the builder (:mod:`footfall.stores.rollup_build`) and by the queries
that compute dirty hours on the spot (:mod:`footfall.dashboard_queries.from_rollups`), so both count
with the same code.

Reads are plain finds joined in Python (SecantusDB runs a ``$lookup`` several times slower than the
two reads; MongoDB takes either). A visit counts under its ``visitor_number``, its visitor's number in
``visitors`` (the builder aligns sessions with it); a visit without one leaves its hour incomplete.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError
from pyroaring import BitMap

from footfall.errors import StoreUnavailable
from footfall.stores.cells import (
    ARRAY_DIMENSIONS,
    FIRST_SEEN,
    KINDS,
    VISIT_DIMENSIONS,
    Cell,
    Value,
    ViewFacts,
    VisitFacts,
    cells_of,
    decode_bitmap,
    decode_rows,
    merge_rows,
)
from footfall.stores.documents import (
    CUSTOM_EVENTS,
    PAGE_VIEWS,
    ROLLUPS,
    SESSIONS,
    VISITORS,
)
from footfall.stores.rollup_marks import hour_of

ALL_KINDS: tuple[str, ...] = (*KINDS, FIRST_SEEN)
__all__ = ["HOUR", "DAY", "HourCells", "rollup_doc_id", "compute_hours", "visit_facts_of", "view_facts_of",
           "read_docs", "cells_from_docs", "merge_cells", "ALL_VALUES", "ALL_KINDS", "day_start", "is_number", "as_utc"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

@dataclass
class HourCells:
    """One hour's cells: ``kinds`` (kind → value → :class:`~footfall.stores.cells.Cell`), the bitmap of
    visitors first seen in it, and whether every visit's visitor had a number (``complete``)."""

    kinds: dict[str, dict[Value, Cell]] = field(default_factory=dict)
    first_seen: BitMap = field(default_factory=BitMap)
    complete: bool = True


def rollup_doc_id(site: str, level: str, at: datetime, kind: str) -> str:
    """``"<site>|<level>|<YYYY-MM-DDTHH>|<kind>"`` (``at`` in UTC)."""
    return f"{site}|{level}|{hour_of(at):%Y-%m-%dT%H}|{kind}"


def is_number(number: Any) -> bool:
    """Whether ``number`` is a visitor number (an int, not a bool); ``None`` and the rest are not."""
    return isinstance(number, int) and not isinstance(number, bool)


def as_utc(at: datetime) -> datetime:
    """``at`` as a timezone-aware UTC datetime (a naive one is taken as UTC, as pymongo returns it)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# -- reading the raw collections ---------------------------------------------------------------------

_VISIT_FIELDS = sorted({f for f in VISIT_DIMENSIONS.values() if f} | {"referrer_host", "utm_source"})


_VISIT_PROJECTION: dict[str, Any] = {"started_at": 1, "last_seen_at": 1, "page_views": 1, "events": 1, "paths": 1,
                                     "routes": 1, "event_names": 1, "visitor_number": 1, "visitor_id": 1,
                                     **dict.fromkeys(_VISIT_FIELDS, 1)}
LEAD = timedelta(hours=6)  # sessions started this long before a range are read with it (their late page views)


def _value_of(doc: dict[str, Any], kind: str) -> Value:
    """A visit's value of a visit-level dimension, as the raw pipelines' ``$ifNull`` gives it."""
    if kind == "source":
        return doc.get("utm_source") if doc.get("utm_source") is not None else doc.get("referrer_host")
    return doc.get(VISIT_DIMENSIONS[kind])


def _elements(value: Any) -> tuple[Value, ...]:
    """An array field as ``$unwind`` sees it: missing, null and ``[]`` give nothing; a scalar, itself."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def _duration_ms(doc: dict[str, Any], bounce: bool) -> int:
    if bounce or doc.get("last_seen_at") is None or doc.get("started_at") is None:
        return 0
    return max(0, int((as_utc(doc["last_seen_at"]) - as_utc(doc["started_at"])) / timedelta(milliseconds=1)))


def visit_facts_of(doc: dict[str, Any]) -> VisitFacts | None:
    """The :class:`VisitFacts` of a ``sessions`` document, ``None`` when it has no visitor number yet.
    Bounce as the raw pipelines define it: ``page_views == 1`` and ``events`` 0 or missing."""
    number = doc.get("visitor_number")
    if not isinstance(number, int) or isinstance(number, bool):
        return None
    bounce = doc.get("page_views") == 1 and (doc.get("events") or 0) == 0
    return VisitFacts(
        number=number, bounce=bounce, duration_ms=_duration_ms(doc, bounce),
        values={kind: _value_of(doc, kind) for kind in VISIT_DIMENSIONS},
        arrays={kind: _elements(doc.get(field)) for kind, (field, _) in ARRAY_DIMENSIONS.items()},
    )


def view_facts_of(doc: dict[str, Any], visit: dict[str, Any] | None) -> ViewFacts:
    """The :class:`ViewFacts` of a ``page_views`` document and its visit's ``sessions`` document
    (``None``: not stored, as the raw pipelines' ``$lookup`` + ``$unwind`` then drop it)."""
    return ViewFacts(
        path=doc.get("path"), route=doc.get("route"),
        visit_values=None if visit is None else {kind: _value_of(visit, kind) for kind in VISIT_DIMENSIONS},
        visit_events=() if visit is None else _elements(visit.get("event_names")),
    )


def _number_from_visitors(db: Database, site: str, sessions: list[dict[str, Any]]) -> None:
    """Fill in ``visitor_number`` of sessions written without one (numbering failed in the request)
    from their ``visitors`` documents, where those have one by now."""
    wanted: list[Any] = sorted({str(doc["visitor_id"]) for doc in sessions if doc.get("visitor_id") is not None})
    numbers: dict[Any, Any] = {}
    for i in range(0, len(wanted), 500):
        numbers.update({doc["visitor_id"]: doc.get("visitor_number") for doc in db[VISITORS].find(
            {"_id": {"$in": [f"{site}|{vid}" for vid in wanted[i:i + 500]]}}, {"visitor_id": 1, "visitor_number": 1})})
    for doc in sessions:
        doc["visitor_number"] = numbers.get(doc.get("visitor_id"))


def compute_hours(db: Database, site: str, start: datetime, end: datetime) -> dict[datetime, HourCells]:
    """Compute the cells of every UTC hour in ``[start, end)`` from the raw collections (four reads,
    and one more for the visits of page views that started more than :data:`LEAD` before).

    A visit counts under its ``visitor_number``, which is its visitor's number in ``visitors`` (the
    drain, the importer and :func:`~footfall.stores.visitor_numbers.backfill` write the same number to
    both; :func:`refresh_site` checks it for every session it builds); a visit without one leaves its
    hour incomplete.

    :param site: the site. :param start: a whole UTC hour; :param end: a later whole UTC hour.
    :return: hour (UTC datetime) → :class:`HourCells`, for every hour of the range (empty ones too).
    :raises StoreUnavailable: MongoDB did not answer.
    """
    hours = [start + HOUR * k for k in range(int((end - start) / HOUR))]
    visits: dict[datetime, list[VisitFacts]] = defaultdict(list)
    views: dict[datetime, list[ViewFacts]] = defaultdict(list)
    names: dict[datetime, list[Value]] = defaultdict(list)
    first_seen: dict[datetime, BitMap] = defaultdict(BitMap)
    incomplete: set[datetime] = set()
    try:
        # plain reads joined here: SecantusDB runs a $lookup several times slower than the reads
        sessions = {doc["_id"]: doc for doc in db[SESSIONS].find(
            {"site": site, "started_at": {"$gte": start - LEAD, "$lt": end}}, _VISIT_PROJECTION)}
        in_range = [doc for doc in sessions.values() if start <= as_utc(doc["started_at"]) < end]
        _number_from_visitors(db, site, [doc for doc in in_range if not is_number(doc.get("visitor_number"))])
        for doc in in_range:
            hour = hour_of(doc["started_at"])
            facts = visit_facts_of(doc)
            if facts is None:
                incomplete.add(hour)
            else:
                visits[hour].append(facts)
        page_views = list(db[PAGE_VIEWS].find({"site": site, "ts": {"$gte": start, "$lt": end}},
                                              {"_id": 0, "ts": 1, "path": 1, "route": 1, "session_id": 1}))
        missing = sorted({v.get("session_id") for v in page_views} - sessions.keys() - {None})
        for i in range(0, len(missing), 500):  # visits started long before: few
            sessions.update({doc["_id"]: doc for doc in db[SESSIONS].find({"_id": {"$in": missing[i:i + 500]}},
                                                                          _VISIT_PROJECTION)})
        for doc in page_views:
            views[hour_of(doc["ts"])].append(view_facts_of(doc, sessions.get(doc.get("session_id"))))
        for doc in db[CUSTOM_EVENTS].find({"site": site, "ts": {"$gte": start, "$lt": end}},
                                          {"_id": 0, "ts": 1, "name": 1}):
            names[hour_of(doc["ts"])].append(doc.get("name"))
        for doc in db[VISITORS].find({"site": site, "first_seen_at": {"$gte": start, "$lt": end}},
                                     {"_id": 0, "first_seen_at": 1, "visitor_number": 1}):
            number = doc.get("visitor_number")
            if isinstance(number, int):
                first_seen[hour_of(doc["first_seen_at"])].add(number)
            else:
                incomplete.add(hour_of(doc["first_seen_at"]))
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer while reading raw data for the rollups: {exc}") from exc
    return {hour: HourCells(cells_of(visits[hour], views[hour], names[hour]), first_seen[hour],
                            hour not in incomplete) for hour in hours}



ALL_VALUES: Any = object()  # read_docs: every row


def read_docs(db: Database, site: str, kinds: Iterable[str], level: str, start: datetime,
              end: datetime | None, value: Any = ALL_VALUES) -> list[dict[str, Any]]:
    """The stored rollup documents of ``site`` for ``kinds`` at ``level`` with ``at`` in ``[start, end)``
    (``end`` ``None``: no upper bound), one indexed range read per kind.

    :param value: read only the row of this value (a ``$elemMatch`` projection: a filtered summary
        needs one row of documents that hold thousands); default every row.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    at: dict[str, Any] = {"$gte": start} if end is None else {"$gte": start, "$lt": end}
    projection = None if value is ALL_VALUES else {"site": 1, "level": 1, "at": 1, "kind": 1, "u": 1,
                                                    "rows": {"$elemMatch": {"k": value}}}
    try:
        return [doc for kind in kinds
                for doc in db[ROLLUPS].find({"site": site, "kind": kind, "level": level, "at": at}, projection)]
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer the rollups read: {exc}") from exc


def cells_from_docs(docs: Iterable[dict[str, Any]]) -> dict[datetime, HourCells]:
    """Stored rollup documents (of one level) back into :class:`HourCells` per bucket start."""
    buckets: dict[datetime, HourCells] = defaultdict(HourCells)
    for doc in docs:
        cells = buckets[as_utc(doc["at"])]
        if doc["kind"] == FIRST_SEEN:
            cells.first_seen = decode_bitmap(doc["u"])
        else:
            cells.kinds[doc["kind"]] = decode_rows(doc.get("rows") or [])
    return dict(buckets)


def merge_cells(parts: Iterable[HourCells]) -> HourCells:
    """Merge buckets into one (kinds merged value by value; first-seen bitmaps united)."""
    merged = HourCells()
    for part in parts:
        for kind, rows in part.kinds.items():
            merge_rows(merged.kinds.setdefault(kind, {}), rows)
        merged.first_seen |= part.first_seen
        merged.complete = merged.complete and part.complete
    return merged


def day_start(at: datetime) -> datetime:
    """The UTC midnight that starts ``at``'s UTC day."""
    at = as_utc(at)
    return datetime.combine(at.date(), time(), tzinfo=UTC)

