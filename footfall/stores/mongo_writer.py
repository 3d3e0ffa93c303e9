"""Writing queued records to MongoDB in batches: idempotent, partial failures isolated.

Used by the drain (:mod:`footfall.drain`). A batch is a few ``bulk_write(ordered=False)`` calls:
page views inserted into ``page_views`` and custom events into ``custom_events`` (keyed by event
id), one update per entry into ``sessions`` (a visit start, or a page view or custom event counted
into its visit, guarded as :mod:`footfall.stores.documents` says), into ``visitors`` one upsert per
visitor of the batch (first and last seen) and, where the batch knows the visitor's number, one
update that sets it if the document has none; and last one ``$inc`` upsert per site and hour into
``rollups_hourly`` for what the batch proved new (:mod:`footfall.stores.rollups`).

A duplicate key is "already stored or counted": success, but not new. Every other write error is
per document: the document MongoDB rejects fails alone (its entry is reported back); a MongoDB that
does not answer fails the whole batch with :class:`~footfall.errors.StoreUnavailable`, to be
written again later: every write is idempotent, and a retried batch adds nothing to the rollups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import InsertOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.events import CustomEvent, PageView, SessionStart
from footfall.stores.documents import (
    CUSTOM_EVENTS,
    INDEXES,
    PAGE_VIEWS,
    SESSIONS,
    VISITORS,
    custom_event_document,
    custom_event_session_update,
    page_view_document,
    page_view_session_update,
    session_start_update,
    visitor_number_update,
    visitor_update,
)
from footfall.stores.event_codec import QueuedRecords
from footfall.stores.rollups import apply_increments, rollup_increments

__all__ = ["ensure_indexes", "write_batch", "BatchOutcome", "DUPLICATE_KEY"]

DUPLICATE_KEY = 11000  # an event stored or counted before (or a start recorded before): success, not new


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


def write_batch(db: Database, batch: Sequence[tuple[str, QueuedRecords]]) -> BatchOutcome:
    """Write decoded stream entries to MongoDB, and add what they proved new to the hourly rollups.

    :param db: the footfall database.
    :param batch: ``(entry id, records)`` pairs.
    :return: the :class:`BatchOutcome`; entries not in ``failed`` are stored.
    :raises StoreUnavailable: MongoDB did not answer (nothing may be acknowledged; write again).
    """
    outcome = BatchOutcome()
    view_ops: list[InsertOne | UpdateOne] = []
    view_owners: list[str] = []
    views: list[PageView] = []
    event_ops: list[InsertOne | UpdateOne] = []
    event_owners: list[str] = []
    events: list[CustomEvent] = []
    session_ops: list[InsertOne | UpdateOne] = []
    session_owners: list[str] = []
    starts: list[SessionStart | None] = []  # per session op: the start it records, if any
    seen: dict[tuple[str, str], _VisitorSpan] = {}
    for entry_id, records in batch:
        start = records.session_start
        record = start or records.page_view or records.custom_event
        if record is not None:
            at = record.started_at if isinstance(record, SessionStart) else record.ts
            span = seen.setdefault((record.site, record.visitor_id), _VisitorSpan(at, at, None, entry_id))
            span.widen(at, record.visitor_number)
        if records.page_view is not None:
            view_ops.append(InsertOne(page_view_document(records.page_view)))
            view_owners.append(entry_id)
            views.append(records.page_view)
            session_op = UpdateOne(*page_view_session_update(records.page_view, start), upsert=True)
        elif records.custom_event is not None:
            event_ops.append(InsertOne(custom_event_document(records.custom_event)))
            event_owners.append(entry_id)
            events.append(records.custom_event)
            session_op = UpdateOne(*custom_event_session_update(records.custom_event, start), upsert=True)
        elif start is not None:
            session_op = UpdateOne(*session_start_update(start), upsert=True)
        else:
            continue
        session_ops.append(session_op)
        session_owners.append(entry_id)
        starts.append(start)
    old_views = _bulk(db, PAGE_VIEWS, view_ops, view_owners, outcome)
    old_events = _bulk(db, CUSTOM_EVENTS, event_ops, event_owners, outcome)
    old_sessions = _bulk(db, SESSIONS, session_ops, session_owners, outcome)
    visitor_ops: list[InsertOne | UpdateOne] = []
    visitor_owners: list[str] = []
    for (site, visitor_id), span in seen.items():
        visitor_ops.append(UpdateOne(*visitor_update(site, visitor_id, span.first, span.last), upsert=True))
        visitor_owners.append(span.entry_id)
    _bulk(db, VISITORS, visitor_ops, visitor_owners, outcome)
    numbering = [(UpdateOne(*visitor_number_update(site, visitor_id, span.number)), span.entry_id)
                 for (site, visitor_id), span in seen.items() if span.number is not None]
    _bulk(db, VISITORS, [op for op, _ in numbering], [owner for _, owner in numbering], outcome)
    apply_increments(db, rollup_increments(
        visits=[(s.site, s.started_at) for i, s in enumerate(starts) if s is not None and i not in old_sessions],
        page_views=[(v.site, v.ts) for i, v in enumerate(views) if i not in old_views],
        custom_events=[(e.site, e.ts) for i, e in enumerate(events) if i not in old_events],
    ))
    outcome.written = len(batch) - len(outcome.failed)
    return outcome
