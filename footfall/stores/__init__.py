"""Redis active-session store and MongoDB recorder, and :func:`build_tracker` to wire them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from footfall.settings import Settings

if TYPE_CHECKING:
    from footfall.middleware.tracker import Tracker

__all__ = ["build_tracker"]


def build_tracker(settings: Settings) -> Tracker:
    """A :class:`~footfall.middleware.tracker.Tracker` on the stores ``settings`` names.

    Creates the MongoDB indexes if MongoDB answers; if it does not, logs and goes on (the indexes
    are created by the next process that starts with MongoDB up).

    :raises ConfigurationError: no secret key, Redis URL or MongoDB URI.
    """
    import logging

    from footfall.errors import StoreUnavailable
    from footfall.middleware.tracker import Tracker
    from footfall.stores.connect import mongo_database, redis_client
    from footfall.stores.mongo_recorder import MongoRecorder, ensure_indexes
    from footfall.stores.redis_sessions import RedisSessionStore

    settings.signing_keys  # noqa: B018 - raises ConfigurationError before any connection is made
    db = mongo_database(settings)
    try:
        ensure_indexes(db)
    except StoreUnavailable as exc:
        logging.getLogger("footfall.stores").warning("indexes not created yet: %s", exc)
    return Tracker(settings, RedisSessionStore(redis_client(settings), settings.session_ttl), MongoRecorder(db))
