"""Redis session store and event queue, MongoDB writer, and :func:`build_tracker` to wire them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from footfall.settings import Settings

if TYPE_CHECKING:
    from footfall.middleware.tracker import Tracker

__all__ = ["build_tracker"]


def build_tracker(settings: Settings) -> Tracker:
    """A :class:`~footfall.middleware.tracker.Tracker` on the Redis (and, for reserving blocks of
    visitor numbers, the MongoDB) ``settings`` names.

    :raises ConfigurationError: no secret key or Redis URL.
    """
    from footfall.middleware.tracker import Tracker
    from footfall.stores.connect import mongo_database, redis_client
    from footfall.stores.redis_sessions import RedisSessionStore

    settings.signing_keys  # noqa: B018 - raises ConfigurationError before any connection is made
    # connects lazily, on first use; a MongoDB that is down delays a block reservation by at most 0.5 s
    db = mongo_database(settings, serverSelectionTimeoutMS=500) if settings.mongodb_uri else None
    return Tracker(settings, RedisSessionStore(redis_client(settings), settings.session_ttl), db)
