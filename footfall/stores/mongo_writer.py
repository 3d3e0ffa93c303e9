"""Writing queued records to MongoDB in batches: idempotent, partial failures isolated.

Used by the drain (:mod:`footfall.drain`). A batch is four ``bulk_write(ordered=False)`` calls: page
views inserted into ``page_views`` (keyed by event id), one update per entry into ``sessions``
(a visit start, or a page view counted into its visit, guarded by the session's ``event_ids``), and
into ``visitors`` one upsert per visitor of the batch (first and last seen) and, where the batch
knows the visitor's number, one update that sets it if the document has none. A
document MongoDB rejects fails alone (its entry is reported back); a MongoDB that does not answer
fails the whole batch with :class:`~footfall.errors.StoreUnavailable`, to be written again later:
every write is idempotent (see :mod:`footfall.stores.documents`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import InsertOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.events import SessionStart
from footfall.stores.documents import (
    INDEXES,
    PAGE_VIEWS,
    SESSIONS,
    VISITORS,
    page_view_document,
    page_view_session_update,
    session_start_update,
    visitor_number_update,
    visitor_update,
)
from footfall.stores.event_codec import QueuedRecords

__all__ = ["ensure_indexes", "write_batch", "BatchOutcome", "DUPLICATE_KEY"]

DUPLICATE_KEY = 11000  # a concurrent upsert of the same _id: the document is stored, so success


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
) -> None:
    if not ops:
        return
    try:
        db[collection].bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        for error in exc.details.get("writeErrors", []):
            if error.get("code") != DUPLICATE_KEY:  # a duplicate is an event stored or counted before
                outcome.failed[owners[error["index"]]] = f"{collection}: {error.get('errmsg', error.get('code'))}"
        if exc.details.get("writeConcernErrors"):
            raise StoreUnavailable(f"MongoDB write concern failed: {exc.details['writeConcernErrors']}") from exc
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not take the batch: {exc}") from exc


def write_batch(db: Database, batch: Sequence[tuple[str, QueuedRecords]]) -> BatchOutcome:
    """Write decoded stream entries to MongoDB.

    :param db: the footfall database.
    :param batch: ``(entry id, records)`` pairs.
    :return: the :class:`BatchOutcome`; entries not in ``failed`` are stored.
    :raises StoreUnavailable: MongoDB did not answer (nothing may be acknowledged; write again).
    """
    outcome = BatchOutcome()
    view_ops: list[InsertOne | UpdateOne] = []
    view_owners: list[str] = []
    session_ops: list[InsertOne | UpdateOne] = []
    session_owners: list[str] = []
    seen: dict[tuple[str, str], _VisitorSpan] = {}
    for entry_id, records in batch:
        record = records.session_start or records.page_view
        if record is not None:
            at = record.started_at if isinstance(record, SessionStart) else record.ts
            span = seen.setdefault((record.site, record.visitor_id), _VisitorSpan(at, at, None, entry_id))
            span.widen(at, record.visitor_number)
        if records.page_view is not None:
            view_ops.append(InsertOne(page_view_document(records.page_view)))
            view_owners.append(entry_id)
            session_op = UpdateOne(*page_view_session_update(records.page_view, records.session_start), upsert=True)
        elif records.session_start is not None:
            session_op = UpdateOne(*session_start_update(records.session_start), upsert=True)
        else:
            continue
        session_ops.append(session_op)
        session_owners.append(entry_id)
    _bulk(db, PAGE_VIEWS, view_ops, view_owners, outcome)
    _bulk(db, SESSIONS, session_ops, session_owners, outcome)
    visitor_ops: list[InsertOne | UpdateOne] = []
    visitor_owners: list[str] = []
    for (site, visitor_id), span in seen.items():
        visitor_ops.append(UpdateOne(*visitor_update(site, visitor_id, span.first, span.last), upsert=True))
        visitor_owners.append(span.entry_id)
    _bulk(db, VISITORS, visitor_ops, visitor_owners, outcome)
    numbering = [(UpdateOne(*visitor_number_update(site, visitor_id, span.number)), span.entry_id)
                 for (site, visitor_id), span in seen.items() if span.number is not None]
    _bulk(db, VISITORS, [op for op, _ in numbering], [owner for _, owner in numbering], outcome)
    outcome.written = len(batch) - len(outcome.failed)
    return outcome
