"""The asyncio tracker: :class:`~footfall.middleware.tracker.Tracker` awaiting ``redis.asyncio`` and
pymongo's ``AsyncMongoClient`` instead of blocking; every decision is the shared one."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from pymongo.asynchronous.database import AsyncDatabase

from footfall.errors import StoreUnavailable
from footfall.middleware.core import Visit
from footfall.middleware.tracker import RequestFacts, _TrackerBase
from footfall.settings import Settings
from footfall.stores.async_redis_sessions import AsyncRedisSessionStore
from footfall.stores.event_codec import PageViewFields
from footfall.stores.visitor_numbers import async_reserve_block

__all__ = ["AsyncTracker", "build_async_tracker"]

log = logging.getLogger("footfall.tracker")


class AsyncTracker(_TrackerBase):
    """Classifies and resolves tracked requests, and queues what they record, on asyncio.

    :param settings: footfall's settings (``FOOTFALL_SECRET_KEY`` required).
    :param sessions: the asyncio Redis session store and event queue.
    :param db: the asyncio MongoDB database where blocks of visitor numbers are reserved, or ``None``.
    :raises ConfigurationError: no secret key.
    """

    def __init__(self, settings: Settings, sessions: AsyncRedisSessionStore, db: AsyncDatabase | None = None) -> None:
        super().__init__(settings)
        self.sessions = sessions
        self.db = db
        self._refill_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()  # background refills, kept until done

    async def resolve(
        self, facts: RequestFacts, *, site: str, now: datetime, page_view: PageViewFields | None = None
    ) -> Visit | None:
        """See :meth:`footfall.middleware.tracker.Tracker.resolve`."""
        attempt = self._begin(facts, site, now, page_view)
        try:
            while (result := await self.sessions.track(attempt.claim, **attempt.call())).needs_block:
                if not await self._refill(site):
                    attempt.go_unnumbered()
        except Exception as exc:  # noqa: BLE001 - fail open: nothing may raise into the app
            attempt.fail(exc)
            return None
        if result.numbers_low and site not in self._prefetching:
            self._prefetching.add(site)
            task = asyncio.get_running_loop().create_task(self._prefetch(site))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return attempt.visit(result)

    async def _prefetch(self, site: str) -> None:
        """Reserve the site's next block ahead, off the request path (a background task)."""
        try:
            await self._refill(site, ahead=True)
        finally:
            self._prefetching.discard(site)

    async def _refill(self, site: str, *, ahead: bool = False) -> bool:
        """See :meth:`footfall.middleware.tracker.Tracker._refill`."""
        if not self._may_refill(self.db is not None) or self.db is None:
            return False
        async with self._refill_lock:  # the tasks of one process reserve one block at a time
            try:
                if await self.sessions.has_numbers(site, ahead=ahead):
                    return True
                first, last = await async_reserve_block(self.db, site, self.settings.visitor_number_block)
                await self.sessions.install_block(site, first, last)
            except StoreUnavailable as exc:
                return self._refill_failed(exc)
        log.info("reserved visitor numbers %d-%d for site %r", first, last, site)
        return True

    async def queue_page_view(self, visit: Visit, facts: RequestFacts, page_view: PageViewFields) -> bool:
        """See :meth:`footfall.middleware.tracker.Tracker.queue_page_view`."""
        try:
            await self.sessions.queue(visit.session_id, self._page_view_payload(visit, facts, page_view),
                                      visit.visitor_number, site=page_view["site"], now=visit.at, zone=self.zone)
        except Exception as exc:  # noqa: BLE001 - fail open
            return self._queue_failed(facts, exc)
        return True

    async def aclose(self) -> None:
        """Wait for background refills, then close the Redis connection pool and the MongoDB client."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sessions.client.aclose()
        if self.db is not None:
            await self.db.client.close()


def build_async_tracker(settings: Settings) -> AsyncTracker:
    """An :class:`AsyncTracker` on the stores ``settings`` names (clients connect lazily).

    :raises ConfigurationError: no secret key or Redis URL.
    """
    from footfall.stores.connect import async_mongo_database, async_redis_client

    settings.signing_keys  # noqa: B018 - raises ConfigurationError before any connection is made
    db = async_mongo_database(settings, serverSelectionTimeoutMS=500) if settings.mongodb_uri else None
    return AsyncTracker(settings, AsyncRedisSessionStore(async_redis_client(settings), settings.session_ttl), db)
