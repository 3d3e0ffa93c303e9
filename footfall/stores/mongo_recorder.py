"""The MongoDB recorder: writes :class:`~footfall.events.SessionStart` and
:class:`~footfall.events.PageView` records, using the pure builders of :mod:`.documents`."""

from __future__ import annotations

import logging

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.events import PageView, SessionStart
from footfall.stores.documents import (
    INDEXES,
    PAGE_VIEWS,
    SESSIONS,
    page_view_document,
    page_view_session_update,
    session_start_update,
)

__all__ = ["MongoRecorder", "ensure_indexes"]

log = logging.getLogger("footfall.recorder")


def ensure_indexes(db: Database) -> None:
    """Create the indexes the queries use; idempotent (MongoDB keeps an identical index as is).

    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        for collection, models in INDEXES.items():
            db[collection].create_indexes(models)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer while creating indexes: {exc}") from exc


class MongoRecorder:
    """Writes visits and page views to MongoDB.

    :param db: the footfall database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._sessions = db[SESSIONS]
        self._page_views = db[PAGE_VIEWS]

    def record_session_start(self, start: SessionStart) -> None:
        """Upsert the visit's ``sessions`` document (idempotent).

        :raises StoreUnavailable: MongoDB did not answer.
        """
        query, update = session_start_update(start)
        try:
            self._sessions.update_one(query, update, upsert=True)
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not record session {start.session_id}: {exc}") from exc

    def record_page_view(self, view: PageView) -> bool:
        """Insert the page view, then count it into its session.

        A page view whose ``event_id`` is already stored is a retry: it counts as success and is
        not counted again (issue 2: "a duplicate-key error counts as success").

        :return: ``True`` when newly stored, ``False`` for a duplicate.
        :raises StoreUnavailable: MongoDB did not answer.
        """
        try:
            try:
                self._page_views.insert_one(page_view_document(view))
            except DuplicateKeyError:
                return False
            query, update = page_view_session_update(view)
            self._sessions.update_one(query, update, upsert=True)
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not record page view {view.event_id}: {exc}") from exc
        return True
