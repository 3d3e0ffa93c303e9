"""Writing queued records to MongoDB in batches: idempotent, partial failures isolated.

Used by the drain (:mod:`footfall.drain`). A batch is a few ``bulk_write(ordered=False)`` calls:

1. an intent naming the batch's event ids (:mod:`footfall.stores.counting`);
2. page views inserted into ``page_views`` and custom events into ``custom_events`` (keyed by event
   id): a new insert is counted below, a duplicate only if :func:`footfall.stores.counting.was_counted`
   says its earlier attempt did not count it;
3. **one update per visit** into ``sessions`` with everything the batch counts into it, in plain
   update operators (:mod:`footfall.stores.session_update`), then one guarded upsert per visit
   start that came without a counted event (:func:`footfall.stores.documents.session_start_update`).
   An update whose entry/exit guess was wrong does not match and collides with the stored ``_id``;
   those visits' view times are read and their updates sent again (at most :data:`SESSION_ROUNDS`
   rounds);
4. the intents settled (earlier ones first, then this attempt's);
5. into ``visitors`` one upsert per visitor of the batch (first and last seen) and, where the batch
   knows the visitor's number, one update that sets it if the document has none.

Every session and visitor write carries its rollup marks (:mod:`footfall.stores.rollup_marks`) in the
same update; the rollups are built from them (:mod:`footfall.stores.rollup_build`).

A duplicate key on an insert is "already stored": success, not new. Every other write error is per
document: the document MongoDB rejects fails alone (its entries are reported back, and a rejected
event is not counted); a MongoDB that does not answer fails the whole batch with
:class:`~footfall.errors.StoreUnavailable`, to be written again later: every write is idempotent,
and a retried batch adds nothing to the counts or the rollups.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import InsertOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.events import CustomEvent, PageView, SessionStart
from footfall.stores.counting import (
    attempt_token,
    earlier_intents,
    finish_intent,
    forget_recovered,
    stored_tokens,
    was_counted,
    write_intent,
)
from footfall.stores.documents import (
    CUSTOM_EVENTS,
    INDEXES,
    PAGE_VIEWS,
    SESSIONS,
    VISITORS,
    custom_event_document,
    page_view_document,
    session_start_update,
    visitor_number_update,
    visitor_update,
)
from footfall.stores.event_codec import QueuedRecords
from footfall.stores.session_update import (
    COUNT_TOKENS_KEPT,
    SessionGroup,
    ViewSpan,
    choose_modes,
    group_by_session,
    group_update,
    span_after,
)

__all__ = ["ensure_indexes", "write_batch", "BatchOutcome", "SpanCache", "DUPLICATE_KEY", "SESSION_ROUNDS"]

log = logging.getLogger("footfall.drain")

DUPLICATE_KEY = 11000  # an event stored before (or a start recorded before): success, not new
SESSION_ROUNDS = 4  # session updates sent again after a wrong entry/exit guess, at most


def ensure_indexes(db: Database) -> None:
    """Create the indexes the queries use; idempotent (MongoDB keeps an identical index as is).

    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        for collection, models in INDEXES.items():
            db[collection].create_indexes(models)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer while creating indexes: {exc}") from exc


@dataclass
class BatchOutcome:
    """What happened to a batch.

    :ivar failed: entry id → MongoDB's reason, for the entries whose document was rejected.
    """

    written: int = 0
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class _VisitorSpan:
    """A visitor's first and last time, and number, within one batch (one ``visitors`` write each)."""

    first: datetime
    last: datetime
    number: int | None
    entry_id: str  # the entry that reports a failure of this write

    def widen(self, at: datetime, number: int | None) -> None:
        self.first, self.last = min(self.first, at), max(self.last, at)
        if self.number is None:
            self.number = number


def _bulk(
    db: Database, collection: str, ops: list[InsertOne | UpdateOne], owners: list[str], outcome: BatchOutcome
) -> set[int]:
    """Write ``ops``; report rejected documents in ``outcome``.

    :return: the indexes of the operations that did not apply (duplicates and rejections): every
        other one was applied by this write, so what it records is new.
    """
    if not ops:
        return set()
    try:
        db[collection].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        not_applied = set()
        for error in exc.details.get("writeErrors", []):
            not_applied.add(error["index"])
            if error.get("code") != DUPLICATE_KEY:  # a duplicate is an event stored or counted before
                outcome.failed[owners[error["index"]]] = f"{collection}: {error.get('errmsg', error.get('code'))}"
        if exc.details.get("writeConcernErrors"):
            raise StoreUnavailable(f"MongoDB write concern failed: {exc.details['writeConcernErrors']}") from exc
        return not_applied
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not take the batch: {exc}") from exc
    return set()


class SpanCache:
    """What this writer last wrote of each visit's entry and exit times (a bounded LRU), the hint
    that picks each update's entry/exit modes (:func:`footfall.stores.session_update.choose_modes`).
    A wrong hint costs a round trip, never a wrong value: the update's filter checks it. It also
    remembers the visitors whose ``visitors`` document it has seen numbered, whose number update
    (a no-op once a number is set: :func:`footfall.stores.documents.visitor_number_update`) it
    then leaves out.

    :param size: visits (and visitors) remembered.
    """

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._spans: OrderedDict[str, ViewSpan | None] = OrderedDict()
        self._numbered: OrderedDict[tuple[str, str], None] = OrderedDict()

    def numbered(self, site: str, visitor_id: str) -> bool:
        """Whether the visitor's document is known to hold a number."""
        return (site, visitor_id) in self._numbered

    def mark_numbered(self, site: str, visitor_id: str) -> None:
        """Remember that the visitor's document holds a number."""
        self._numbered[(site, visitor_id)] = None
        self._numbered.move_to_end((site, visitor_id))
        while len(self._numbered) > self.size:
            self._numbered.popitem(last=False)

    def get(self, session_id: str) -> tuple[bool, ViewSpan | None]:
        """``(known, span)``: whether the visit is remembered, and its span (``None``: no view)."""
        if session_id not in self._spans:
            return False, None
        self._spans.move_to_end(session_id)
        return True, self._spans[session_id]

    def put(self, session_id: str, span: ViewSpan | None) -> None:
        """Remember ``span`` for the visit (evicting the least recently used beyond ``size``)."""
        self._spans[session_id] = span
        self._spans.move_to_end(session_id)
        while len(self._spans) > self.size:
            self._spans.popitem(last=False)


def _read_spans(db: Database, sessions: list[str]) -> dict[str, ViewSpan | None]:
    try:
        found = {doc["_id"]: ViewSpan(doc.get("first_view_at"), doc.get("last_view_at"))
                 for doc in db[SESSIONS].find({"_id": {"$in": sessions}}, {"first_view_at": 1, "last_view_at": 1})}
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    return {session: found.get(session) for session in sessions}


def _write_groups(db: Database, groups: list[SessionGroup], token: str, cache: SpanCache,
                  outcome: BatchOutcome) -> None:
    """Send one update per group; send again, with the stored times read, the ones whose guess
    missed. :raises StoreUnavailable: MongoDB did not answer, or a visit kept changing."""
    pending = groups
    for _ in range(SESSION_ROUNDS):
        if not pending:
            return
        plans = []
        for group in pending:
            known, span = cache.get(group.session_id)
            modes = choose_modes(group, span if known else None)
            plans.append((group, modes, span if known else None))
        ops: list[InsertOne | UpdateOne] = [UpdateOne(*group_update(g, modes, token), upsert=True)
                                            for g, modes, _ in plans]
        owners = [g.entries[0] for g, _, _ in plans]
        missed = _bulk(db, SESSIONS, ops, owners, outcome)
        for index, (group, modes, span) in enumerate(plans):
            if index in missed and owners[index] in outcome.failed:
                for entry_id in group.entries[1:]:
                    outcome.failed[entry_id] = outcome.failed[owners[index]]
            elif index not in missed:
                cache.put(group.session_id, span_after(group, modes, span))
        retry = [plans[i][0] for i in sorted(missed) if owners[i] not in outcome.failed]
        for session_id, span in _read_spans(db, [g.session_id for g in retry]).items():
            cache.put(session_id, span)
        pending = retry
    if pending:
        raise StoreUnavailable(f"sessions kept changing under the drain: {[g.session_id for g in pending][:5]}")


def _counted(
    db: Database, token: str, records: list[tuple[str, PageView | CustomEvent, SessionStart | None]],
    not_applied: set[int], failed: set[str],
) -> tuple[list[tuple[str, PageView | CustomEvent, SessionStart | None]], dict[str, set[str]]]:
    """Which records to count: the new inserts, and the duplicates their earlier attempt did not
    count (:func:`footfall.stores.counting.was_counted`).

    :return: the records to count, and the earlier intents naming the batch's events (to settle).
    """
    try:
        earlier = earlier_intents(db, token, [record.event_id for _, record, _ in records])
        doubtful = {record.session_id for i, (_, record, _) in enumerate(records)
                    if i in not_applied and record.event_id in earlier}
        tokens = stored_tokens(db, doubtful)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    counted = []
    for index, (entry_id, record, start) in enumerate(records):
        if entry_id in failed:
            continue
        if index in not_applied:
            verdict = was_counted(earlier.get(record.event_id, set()), tokens.get(record.session_id))
            if verdict is None:
                log.warning("event %s of session %s: cannot tell whether an interrupted write counted it "
                            "(the visit was written %d times since); not counted again", record.event_id,
                            record.session_id, COUNT_TOKENS_KEPT)
            if verdict is not False:
                continue
        counted.append((entry_id, record, start))
    return counted, earlier


def _inserts(
    records: list[tuple[str, PageView | CustomEvent, SessionStart | None]],
) -> list[tuple[str, list[int], list[InsertOne | UpdateOne]]]:
    """``(collection, positions in records, insert ops)`` for the page views and the custom events."""
    views: tuple[list[int], list[InsertOne | UpdateOne]] = ([], [])
    events: tuple[list[int], list[InsertOne | UpdateOne]] = ([], [])
    for index, (_, record, _) in enumerate(records):
        if isinstance(record, PageView):
            views[0].append(index)
            views[1].append(InsertOne(page_view_document(record)))
        else:
            events[0].append(index)
            events[1].append(InsertOne(custom_event_document(record)))
    return [(PAGE_VIEWS, *views), (CUSTOM_EVENTS, *events)]


def write_batch(
    db: Database, batch: Sequence[tuple[str, QueuedRecords]], cache: SpanCache | None = None
) -> BatchOutcome:
    """Write decoded stream entries to MongoDB, and add what they counted to the hourly rollups.

    :param db: the footfall database.
    :param batch: ``(entry id, records)`` pairs.
    :param cache: the writer's :class:`SpanCache` (a drain keeps one; ``None``: a fresh one).
    :return: the :class:`BatchOutcome`; entries not in ``failed`` are stored and counted once.
    :raises StoreUnavailable: MongoDB did not answer (nothing may be acknowledged; write again).
    """
    cache = cache if cache is not None else SpanCache()
    outcome = BatchOutcome()
    token = attempt_token()
    records: list[tuple[str, PageView | CustomEvent, SessionStart | None]] = []
    starts_alone: list[tuple[str, SessionStart]] = []
    seen: dict[tuple[str, str], _VisitorSpan] = {}
    for entry_id, queued in batch:
        start = queued.session_start
        record = queued.page_view or queued.custom_event
        for item in (start, record):
            if item is not None:
                at = item.started_at if isinstance(item, SessionStart) else item.ts
                span = seen.setdefault((item.site, item.visitor_id), _VisitorSpan(at, at, None, entry_id))
                span.widen(at, item.visitor_number)
        if record is not None:
            records.append((entry_id, record, start))
        elif start is not None:
            starts_alone.append((entry_id, start))
    try:
        if records:
            write_intent(db, token, [record.event_id for _, record, _ in records])
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not take the batch: {exc}") from exc
    not_applied: set[int] = set()
    for collection, positions, ops in _inserts(records):
        missed = _bulk(db, collection, ops, [records[i][0] for i in positions], outcome)
        not_applied.update(positions[i] for i in missed)
    counted, earlier = _counted(db, token, records, not_applied, set(outcome.failed))
    # a start whose event is not counted now (stored and counted before) goes on its own, guarded
    counted_entries = {entry_id for entry_id, _, _ in counted}
    starts_alone += [(entry_id, start) for entry_id, _, start in records
                     if start is not None and entry_id not in counted_entries and entry_id not in outcome.failed]
    groups = group_by_session(counted)
    _write_groups(db, groups, token, cache, outcome)
    start_ops: list[InsertOne | UpdateOne] = [UpdateOne(*session_start_update(start), upsert=True)
                                              for _, start in starts_alone]
    old_starts = _bulk(db, SESSIONS, start_ops, [entry_id for entry_id, _ in starts_alone], outcome)
    for index, (_, start) in enumerate(starts_alone):
        if index not in old_starts and not cache.get(start.session_id)[0]:
            cache.put(start.session_id, ViewSpan(None, None))
    try:
        forget_recovered(db, earlier)
        if records:
            finish_intent(db, token)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not take the batch: {exc}") from exc
    visitor_ops: list[InsertOne | UpdateOne] = []
    visitor_owners: list[str] = []
    for (site, visitor_id), span in seen.items():
        visitor_ops.append(UpdateOne(*visitor_update(site, visitor_id, span.first, span.last), upsert=True))
        visitor_owners.append(span.entry_id)
    _bulk(db, VISITORS, visitor_ops, visitor_owners, outcome)
    numbering = [(site, visitor_id, span) for (site, visitor_id), span in seen.items()
                 if span.number is not None and not cache.numbered(site, visitor_id)]
    _bulk(db, VISITORS, [UpdateOne(*visitor_number_update(site, visitor_id, span.number))  # type: ignore[arg-type]
                         for site, visitor_id, span in numbering],
          [span.entry_id for _, _, span in numbering], outcome)
    for site, visitor_id, span in numbering:
        if span.entry_id not in outcome.failed:  # set now, or it had one already: it holds a number
            cache.mark_numbered(site, visitor_id)
    outcome.written = len(batch) - len(outcome.failed)
    return outcome
