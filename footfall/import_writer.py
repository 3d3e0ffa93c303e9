"""The importer's writes: batched, unordered, idempotent, overlapped with the parsing.

:class:`ImportWriter` takes the ``page_views`` and ``sessions`` documents the importer builds, in
time order, and writes them in batches of :data:`WRITE_BATCH`:

- **visitor numbers** first (synchronously, in the caller's thread): the batch's visitors that have
  no number yet (not remembered, not in ``visitors``) get the site's next numbers, one block
  reserved per batch, in first-seen order with ties by visitor id — so a log numbers its visitors
  as live traffic would have, and as the importer did when it numbered the whole file at once;
- then the documents, in a background thread (one batch in flight while the next is built): an
  unordered insert of every document, and an upserting replace of those whose ``_id`` was already
  stored (a file imported again, or again after lines were appended). Every id is derived from the
  log, so each page view and session is stored once however often a file is imported;
- sessions carry their rollup marks (``hours``, a fresh ``rollup_dirty``), from which the rollups
  are built (:mod:`footfall.stores.rollup_build`).

``visitors`` writes go through :func:`footfall.stores.documents.visitor_update` (each sets a fresh
``rollup_dirty`` token, :mod:`footfall.stores.rollup_marks`); the caller gives session documents
their ``hours`` and token before handing them over.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pymongo import InsertOne, ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.stores.documents import PAGE_VIEWS, SESSIONS, VISITORS, visitor_number_update, visitor_update
from footfall.stores.visitor_numbers import reserve_block, visitor_doc_id

__all__ = ["WRITE_BATCH", "NUMBER_CACHE", "ImportWriter", "insert_or_replace", "insert_or_keep"]

WRITE_BATCH = 1000  # page views per batch (MongoDB's own bulk batches are larger; this bounds memory)
NUMBER_CACHE = 100_000  # visitor numbers remembered (LRU); the rest are read back from `visitors`
LOOKUP_CHUNK = 100  # ids per $in read: SecantusDB checks each document found against the whole list
DUPLICATE_KEY = 11000


def insert_or_replace(db: Database, collection: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store ``documents`` whole: an unordered insert, then an upserting replace of the ones whose
    ``_id`` exists already.

    Equivalent to one upserting replace per document, at the speed of an insert when the documents
    are new (the common case: a first import).

    :param db: the database.
    :param collection: the collection's name.
    :param documents: documents with an ``_id`` each.
    :return: the documents the insert stored (new), as opposed to replaced (stored before).
    :raises StoreUnavailable: MongoDB did not answer, or refused a document for a reason other than
        a duplicate ``_id``.
    """
    inserted = insert_or_keep(db, collection, documents)
    if len(inserted) == len(documents):
        return inserted
    new = {id(doc) for doc in inserted}
    replaces = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in documents if id(doc) not in new]
    try:
        db[collection].bulk_write(replaces, ordered=False)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not replace {len(replaces)} {collection} documents: {exc}") from exc
    return inserted


class ImportWriter:
    """Batches the importer's documents and writes them (see the module docstring).

    Call :meth:`page_view` and :meth:`session` in time order, :meth:`flush` at will (the importer
    flushes only between two timestamps, so visitors first seen in the same second are numbered
    together, ties by visitor id), and :meth:`close` at the end, which writes what is left and waits.

    :param db: the footfall database (indexes already created).
    :param site: the site of every document.
    :param batch_size: page views per batch.
    """

    def __init__(self, db: Database, site: str, *, batch_size: int = WRITE_BATCH) -> None:
        self.db = db
        self.site = site
        self.batch_size = batch_size
        self._views: list[dict[str, Any]] = []
        self._sessions: list[dict[str, Any]] = []
        self._spans: dict[str, tuple[datetime, datetime]] = {}  # visitor id -> (first, last) seen in the batch
        self._numbers: OrderedDict[str, tuple[int, datetime]] = OrderedDict()  # id -> (number, last seen written)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="footfall-import-writer")
        self._in_flight: Future[None] | None = None
        self.written_views = 0  # page views handed to the database so far

    @property
    def full(self) -> bool:
        """Whether a batch's worth of page views is pending."""
        return len(self._views) >= self.batch_size

    def page_view(self, doc: dict[str, Any]) -> None:
        """Queue a ``page_views`` document (its ``visitor_number`` is filled in at the flush)."""
        self._views.append(doc)
        self._seen(doc["visitor_id"], doc["ts"], doc["ts"])

    def session(self, doc: dict[str, Any]) -> None:
        """Queue a finished ``sessions`` document (its ``visitor_number`` is filled in at the flush);
        its visitor's ``visitors`` document gets the session's first and last activity."""
        self._sessions.append(doc)
        self._seen(doc["visitor_id"], doc["started_at"], doc["last_seen_at"])  # page views already seen

    def _seen(self, visitor_id: str, first: datetime, last: datetime) -> None:
        span = self._spans.get(visitor_id)
        self._spans[visitor_id] = (first, last) if span is None else (min(span[0], first), max(span[1], last))

    def flush(self) -> None:
        """Number the pending visitors and write the pending documents (in the background).

        :raises StoreUnavailable: MongoDB did not answer or refused a write (this batch's
            numbering, or the previous batch's documents).
        """
        if not self._views and not self._sessions:
            return
        numbers, visitor_updates = self._number(self._spans)
        for doc in (*self._views, *self._sessions):
            doc["visitor_number"] = numbers[doc["visitor_id"]]
        views, sessions = self._views, self._sessions
        self._views, self._sessions, self._spans = [], [], {}
        self._wait()
        self._in_flight = self._pool.submit(self._write, views, sessions, visitor_updates)
        self.written_views += len(views)

    def close(self) -> None:
        """Flush, wait for every write, and stop the background thread.

        :raises StoreUnavailable: as :meth:`flush`.
        """
        try:
            self.flush()
            self._wait()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Drop what is pending and stop, after the write in flight ends (its error, if any, is
        dropped too: the caller is already handling one). Nothing pending is written."""
        self._views, self._sessions, self._spans = [], [], {}
        try:
            self._wait()
        except Exception:  # noqa: BLE001, S110 - the caller's exception is the one to report
            pass
        finally:
            self._pool.shutdown(wait=True)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def _write(self, views: list[dict[str, Any]], sessions: list[dict[str, Any]],
               visitor_updates: list[UpdateOne]) -> None:
        if visitor_updates:
            try:
                self.db[VISITORS].bulk_write(visitor_updates, ordered=False)
            except PyMongoError as exc:
                raise StoreUnavailable(f"MongoDB did not store {len(visitor_updates)} visitors: {exc}") from exc
        insert_or_replace(self.db, PAGE_VIEWS, views)
        insert_or_replace(self.db, SESSIONS, sessions)

    def _remember(self, visitor_id: str, number: int, last_written: datetime) -> None:
        self._numbers[visitor_id] = (number, last_written)
        self._numbers.move_to_end(visitor_id)
        if len(self._numbers) > NUMBER_CACHE:
            self._numbers.popitem(last=False)

    def _number(self, spans: dict[str, tuple[datetime, datetime]]) -> tuple[dict[str, int], list[UpdateOne]]:
        """Numbers for the batch's visitors, and the ``visitors`` writes still to do.

        Visitors not remembered are looked up (``$in`` reads of :data:`LOOKUP_CHUNK` ids: SecantusDB
        matches every document found against the whole list, so one read of a whole batch costs the
        square of its size); those without a document are inserted whole, with their number: the
        document :func:`visitor_update` would create, which on SecantusDB costs half a
        read-and-upsert. Numbers go to the visitors without one, in
        first-seen order (ties by visitor id), one block per batch. All of it happens here, before
        the batch's documents are handed over, so a later batch finds them.

        :return: ``(visitor id -> number, the first-and-last-seen updates of visitors already
            stored)``: those go with the batch's documents.
        """
        numbers: dict[str, int] = {}
        updates: list[UpdateOne] = []
        unknown: list[str] = []
        for vid, (first, last) in spans.items():
            known = self._numbers.get(vid)
            if known is None:
                unknown.append(vid)
                continue
            numbers[vid] = known[0]
            if last > known[1]:  # time order: only the last-seen moves forward
                updates.append(UpdateOne(*visitor_update(self.site, vid, first, last), upsert=True))
                self._remember(vid, known[0], last)
            else:
                self._numbers.move_to_end(vid)
        if not unknown:
            return numbers, updates
        stored: set[str] = set()  # visitors documents that exist, numbered or not
        try:
            for start in range(0, len(unknown), LOOKUP_CHUNK):
                ids = [visitor_doc_id(self.site, vid) for vid in unknown[start:start + LOOKUP_CHUNK]]
                for doc in self.db[VISITORS].find({"_id": {"$in": ids}}, {"visitor_id": 1, "visitor_number": 1}):
                    stored.add(doc["visitor_id"])
                    if isinstance(doc.get("visitor_number"), int):
                        numbers[doc["visitor_id"]] = int(doc["visitor_number"])
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
        updates.extend(UpdateOne(*visitor_update(self.site, vid, *spans[vid]), upsert=True)
                       for vid in unknown if vid in stored)
        lacking = sorted((vid for vid in unknown if vid not in numbers), key=lambda vid: (spans[vid][0], vid))
        if lacking:
            first_number, _ = reserve_block(self.db, self.site, len(lacking))
            numbers.update({vid: first_number + i for i, vid in enumerate(lacking)})
            fresh = [{**_visitor_document(*visitor_update(self.site, vid, *spans[vid])), "visitor_number": numbers[vid]}
                     for vid in lacking if vid not in stored]
            inserted = {doc["visitor_id"] for doc in insert_or_keep(self.db, VISITORS, fresh)}
            raced = [vid for vid in lacking if vid not in stored and vid not in inserted]  # created meanwhile
            ops = [UpdateOne(*visitor_update(self.site, vid, *spans[vid]), upsert=True) for vid in raced]
            ops += [UpdateOne(*visitor_number_update(self.site, vid, numbers[vid]))
                    for vid in lacking if vid not in inserted]  # only where no number is set yet
            if ops:
                try:
                    self.db[VISITORS].bulk_write(ops, ordered=True)  # in order: a number needs its document
                except PyMongoError as exc:
                    raise StoreUnavailable(f"MongoDB did not number {len(ops)} visitors: {exc}") from exc
        for vid in unknown:
            self._remember(vid, numbers[vid], spans[vid][1])
        return numbers, updates


def _visitor_document(query: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """The document an upsert of :func:`visitor_update`'s ``(query, update)`` inserts."""
    return {**query, **update["$min"], **update["$max"], **update["$set"], **update["$setOnInsert"]}


def insert_or_keep(db: Database, collection: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert ``documents`` (unordered), leaving alone those whose ``_id`` is already stored.

    :return: the documents inserted.
    :raises StoreUnavailable: MongoDB did not answer, or refused a document for a reason other than
        a duplicate ``_id``.
    """
    if not documents:
        return []
    try:
        db[collection].bulk_write([InsertOne(doc) for doc in documents], ordered=False)
        return documents
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        other = [error for error in errors if error.get("code") != DUPLICATE_KEY]
        if other:
            raise StoreUnavailable(
                f"MongoDB refused {len(other)} {collection} documents: {other[0].get('errmsg')}") from exc
        existing = {error["index"] for error in errors}
        return [doc for i, doc in enumerate(documents) if i not in existing]
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not store {len(documents)} {collection} documents: {exc}") from exc
