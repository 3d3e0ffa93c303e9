"""Redis session store and event queue, MongoDB writer, and :func:`build_tracker` to wire them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from footfall.settings import Settings

if TYPE_CHECKING:
    from footfall.middleware.tracker import Tracker

__all__ = ["build_tracker"]


def build_tracker(settings: Settings) -> Tracker:
    """A :class:`~footfall.middleware.tracker.Tracker` on the Redis ``settings`` names.

    :raises ConfigurationError: no secret key or Redis URL.
    """
    from footfall.middleware.tracker import Tracker
    from footfall.stores.connect import redis_client
    from footfall.stores.redis_sessions import RedisSessionStore

    settings.signing_keys  # noqa: B018 - raises ConfigurationError before any connection is made
    return Tracker(settings, RedisSessionStore(redis_client(settings), settings.session_ttl))
