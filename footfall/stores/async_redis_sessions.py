"""The asyncio twin of :class:`~footfall.stores.redis_sessions.RedisSessionStore` (``redis.asyncio``).

A thin shell: the same script, keys and arguments (:func:`~footfall.stores.redis_sessions.track_call`)
and the same reply parsing; only the awaiting differs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis
import redis.asyncio

from footfall.errors import StoreUnavailable
from footfall.live.counters import QUEUE_SCRIPT
from footfall.middleware.core import SessionClaim
from footfall.stores.redis_sessions import (
    ALLOCATOR_FIELDS,
    INSTALL_BLOCK_SCRIPT,
    STREAM_KEY,
    TRACK_SCRIPT,
    QueueResult,
    allocator_has_numbers,
    allocator_key,
    parse_track_reply,
    queue_call,
    queue_fields,
    track_call,
)

__all__ = ["AsyncRedisSessionStore"]


class AsyncRedisSessionStore:
    """Confirms, slides and starts active sessions, numbers visitors and queues events, in Redis.

    :param client: a ``redis.asyncio`` client (see :func:`footfall.stores.connect.async_redis_client`).
    :param session_ttl: seconds a session stays active after its last request.
    """

    def __init__(self, client: redis.asyncio.Redis, session_ttl: int) -> None:
        self.client = client
        self.session_ttl = session_ttl
        self._track = client.register_script(TRACK_SCRIPT)
        self._install_block = client.register_script(INSTALL_BLOCK_SCRIPT)
        self._queue = client.register_script(QUEUE_SCRIPT)

    async def track(self, claim: SessionClaim, **call: Any) -> QueueResult:
        """Run the track script once (one round trip); ``call`` as for
        :func:`~footfall.stores.redis_sessions.track_call`.

        :raises StoreUnavailable: Redis did not answer within the socket timeout.
        """
        prepared = track_call(claim, session_ttl=self.session_ttl, **call)
        try:
            return parse_track_reply(await self._track(keys=prepared.keys, args=prepared.args))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def install_block(self, site: str, first: int, last: int) -> bool:
        """See :meth:`~footfall.stores.redis_sessions.RedisSessionStore.install_block`."""
        try:
            return int(await self._install_block(keys=[allocator_key(site)], args=[first, last])) == 1
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def has_numbers(self, site: str, *, ahead: bool = False) -> bool:
        """See :meth:`~footfall.stores.redis_sessions.RedisSessionStore.has_numbers`."""
        try:
            return allocator_has_numbers(await self.client.hmget(allocator_key(site), *ALLOCATOR_FIELDS),
                                         ahead=ahead)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def queue(
        self, session_id: str, payload: str, visitor_number: int | None = None, *, site: str | None = None,
        now: datetime | None = None, zone: ZoneInfo | None = None,
    ) -> str:
        """See :meth:`~footfall.stores.redis_sessions.RedisSessionStore.queue`."""
        try:
            if site is None or now is None:
                entry = await self.client.xadd(STREAM_KEY, queue_fields(session_id, payload, visitor_number))
            else:
                call = queue_call(session_id, payload, visitor_number, site=site, now=now, zone=zone)
                entry = await self._queue(keys=call.keys, args=call.args)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        return entry.decode() if isinstance(entry, bytes) else str(entry)
