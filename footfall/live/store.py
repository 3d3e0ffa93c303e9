"""Reading the live counters (and seeding them from MongoDB once): thin sync and asyncio shells.

Every decision is in the pure modules: the commands of a read (:func:`~footfall.live.counters.
queue_snapshot_read`), the stats object (:func:`~footfall.live.counters.build_stats`), the rebuild's
aggregation and Lua (:mod:`footfall.live.rebuild`). A read is one ``MULTI``/``EXEC`` round trip and
never touches MongoDB once the site's counters are seeded; only the first read after Redis lost them
runs the one aggregation (and a read while another process rebuilds answers what Redis has so far).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.errors import ConfigurationError, StoreUnavailable
from footfall.live.counters import (
    REBUILDS_KEY,
    SWEEP_SCRIPT,
    CounterSnapshot,
    channel,
    day_bounds,
    day_ttl_ms,
    live_keys,
    local_day,
    parse_snapshot,
    queue_snapshot_read,
)
from footfall.live.rebuild import (
    APPLY_SCRIPT,
    LOCK_MS,
    RELEASE_SCRIPT,
    RebuildCounts,
    apply_call,
    parse_rebuild,
    parse_rebuild_records,
    rebuild_pipeline,
)
from footfall.settings import Settings
from footfall.stores.documents import SESSIONS

__all__ = ["LiveStore", "AsyncLiveStore", "live_redis_client", "async_live_redis_client"]

LIVE_SOCKET_TIMEOUT = 2.0  # seconds: reads are off the tracking path, and a rebuild's apply may be large


def _options() -> dict[str, Any]:
    return {"socket_timeout": LIVE_SOCKET_TIMEOUT, "socket_connect_timeout": LIVE_SOCKET_TIMEOUT,
            "health_check_interval": 30}


def live_redis_client(settings: Settings) -> redis.Redis:
    """The live numbers' own Redis client: off the tracking path, so 2 s timeouts instead of the
    request path's fail-fast ones (a rebuild's apply may take a moment).

    :raises ConfigurationError: ``FOOTFALL_REDIS_URL`` is not set.
    """
    if not settings.redis_url:
        raise ConfigurationError("FOOTFALL_REDIS_URL is not set")
    return redis.Redis.from_url(settings.redis_url, **_options())


def async_live_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`live_redis_client`.

    :raises ConfigurationError: ``FOOTFALL_REDIS_URL`` is not set.
    """
    if not settings.redis_url:
        raise ConfigurationError("FOOTFALL_REDIS_URL is not set")
    return redis.asyncio.Redis.from_url(settings.redis_url, **_options())


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


@dataclass(frozen=True)
class _Plan:
    """One rebuild attempt's fixed inputs (pure): which day, which keys, which bounds."""

    site: str
    now: datetime
    settings: Settings

    @property
    def keys(self) -> Any:
        return live_keys(self.site, local_day(self.now, self.settings.zone))

    def pipeline(self, since_ms: int) -> list[dict[str, Any]]:
        day_start, _ = day_bounds(local_day(self.now, self.settings.zone), self.settings.zone)
        return rebuild_pipeline(self.site, datetime.fromtimestamp(since_ms / 1000, UTC), day_start)

    def apply(self, counts: RebuildCounts, since_ms: int) -> tuple[list[str], list[Any]]:
        zone = self.settings.zone
        return apply_call(self.site, self.keys, counts, since_ms=since_ms, now_ms=_ms(self.now),
                          day=local_day(self.now, zone).isoformat(), day_ttl_ms=day_ttl_ms(self.now, zone))

    def sweep(self) -> tuple[list[str], list[Any]]:
        keys = self.keys
        now_ms = _ms(self.now)
        return ([keys.active, keys.totals], [now_ms - self.settings.active_window * 1000, now_ms,
                                              local_day(self.now, self.settings.zone).isoformat(), channel(self.site)])


class LiveStore:
    """Reads a site's live counters; seeds them from MongoDB when Redis lost them.

    :param client: a redis-py client (its socket timeout bounds a read; see :func:`live_redis_options`).
    :param db: the footfall MongoDB database for the one-time rebuild, or ``None`` (no rebuild).
    :param settings: supplies ``active_window`` and ``zone``.
    """

    def __init__(self, client: redis.Redis, db: Database | None, settings: Settings) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self._apply = client.register_script(APPLY_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    def read(self, site: str, now: datetime) -> CounterSnapshot:
        """The site's counters as Redis has them (one round trip, no MongoDB).

        :raises StoreUnavailable: Redis did not answer.
        """
        pipe = self.client.pipeline(transaction=True)
        queue_snapshot_read(pipe, site, now, window=self.settings.active_window, zone=self.settings.zone)
        try:
            return parse_snapshot(pipe.execute())
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def snapshot(self, site: str, now: datetime) -> CounterSnapshot:
        """:meth:`read`, after seeding the site's counters from MongoDB if they are not yet.

        :param now: the read's instant (aware UTC datetime).
        :raises StoreUnavailable: Redis did not answer, or the counters need a rebuild and MongoDB
            did not answer.
        """
        snap = self.read(site, now)
        if snap.seeded or self.db is None:
            return snap
        return self._rebuild(_Plan(site, now, self.settings), snap)

    def _rebuild(self, plan: _Plan, snap: CounterSnapshot) -> CounterSnapshot:
        token = uuid.uuid4().hex
        try:
            if not self.client.set(plan.keys.lock, token, nx=True, px=LOCK_MS):
                return snap  # another process is rebuilding: what Redis has so far
            try:
                if not self._seed(plan, snap.since_ms):
                    return snap  # nothing recorded anywhere: store nothing (an unknown site stays unknown)
            finally:
                self._release(keys=[plan.keys.lock], args=[token])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        return self.read(plan.site, plan.now)

    def _seed(self, plan: _Plan, since_ms: int | None) -> bool:
        """Count what MongoDB holds from before the counters' generation and add it (see
        :mod:`footfall.live.rebuild`); ``False`` when there are no counters and MongoDB holds nothing."""
        for _ in range(3):
            probe = since_ms if since_ms is not None else _ms(plan.now)
            counts = self._aggregate(plan, probe)
            if since_ms is None:
                if counts.empty:
                    return False
                self.client.hsetnx(plan.keys.totals, "since_ms", probe)
                since_ms = int(self.client.hget(plan.keys.totals, "since_ms") or probe)  # type: ignore[arg-type]
                if since_ms != probe:
                    continue  # a request started the counters meanwhile: count what is before it
            keys, args = plan.apply(counts, since_ms)
            if int(self._apply(keys=keys, args=args)) != -1:
                return True
            since_ms = None  # Redis lost the counters again meanwhile: start over
        return True

    def _aggregate(self, plan: _Plan, since_ms: int) -> RebuildCounts:
        if self.db is None:
            return RebuildCounts()
        try:
            return parse_rebuild(list(self.db[SESSIONS].aggregate(plan.pipeline(since_ms))))
        except PyMongoError as exc:
            raise StoreUnavailable(f"the live counters need a rebuild and MongoDB did not answer: {exc}") from exc

    def rebuilds(self) -> dict[str, dict[str, Any]]:
        """The rebuilds done so far, ``{site: {"at", "since", "visits", "page_views",
        "unique_visitors"}}`` (see :mod:`footfall.live.rebuild`).

        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            return parse_rebuild_records(self.client.hgetall(REBUILDS_KEY))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def close(self) -> None:
        """Close the Redis connection pool (the MongoDB client belongs to the caller)."""
        self.client.close()


class AsyncLiveStore:
    """The asyncio twin of :class:`LiveStore`, plus the sweep the live hub runs.

    :param client: a ``redis.asyncio`` client.
    :param db: the asyncio MongoDB database for the one-time rebuild, or ``None``.
    :param settings: supplies ``active_window`` and ``zone``.
    :param clock: returns the current UTC datetime (tests pass a simulated clock).
    """

    def __init__(self, client: redis.asyncio.Redis, db: AsyncDatabase | None, settings: Settings,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.client = client
        self.db = db
        self.settings = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._apply = client.register_script(APPLY_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._sweep = client.register_script(SWEEP_SCRIPT)

    async def read(self, site: str, now: datetime) -> CounterSnapshot:
        """See :meth:`LiveStore.read`."""
        pipe = self.client.pipeline(transaction=True)
        queue_snapshot_read(pipe, site, now, window=self.settings.active_window, zone=self.settings.zone)
        try:
            return parse_snapshot(await pipe.execute())
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def snapshot(self, site: str, now: datetime | None = None) -> CounterSnapshot:
        """See :meth:`LiveStore.snapshot` (``now`` defaults to the store's clock)."""
        now = now or self.clock()
        snap = await self.read(site, now)
        if snap.seeded or self.db is None:
            return snap
        return await self._rebuild(_Plan(site, now, self.settings), snap)

    async def _rebuild(self, plan: _Plan, snap: CounterSnapshot) -> CounterSnapshot:
        token = uuid.uuid4().hex
        try:
            if not await self.client.set(plan.keys.lock, token, nx=True, px=LOCK_MS):
                return snap
            try:
                if not await self._seed(plan, snap.since_ms):
                    return snap
            finally:
                await self._release(keys=[plan.keys.lock], args=[token])
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        return await self.read(plan.site, plan.now)

    async def _seed(self, plan: _Plan, since_ms: int | None) -> bool:
        """See :meth:`LiveStore._seed`."""
        for _ in range(3):
            probe = since_ms if since_ms is not None else _ms(plan.now)
            counts = await self._aggregate(plan, probe)
            if since_ms is None:
                if counts.empty:
                    return False
                await self.client.hsetnx(plan.keys.totals, "since_ms", probe)
                since_ms = int(await self.client.hget(plan.keys.totals, "since_ms") or probe)
                if since_ms != probe:
                    continue
            keys, args = plan.apply(counts, since_ms)
            if int(await self._apply(keys=keys, args=args)) != -1:
                return True
            since_ms = None
        return True

    async def _aggregate(self, plan: _Plan, since_ms: int) -> RebuildCounts:
        if self.db is None:
            return RebuildCounts()
        try:
            cursor = await self.db[SESSIONS].aggregate(plan.pipeline(since_ms))
            return parse_rebuild(await cursor.to_list())
        except PyMongoError as exc:
            raise StoreUnavailable(f"the live counters need a rebuild and MongoDB did not answer: {exc}") from exc

    async def sweep(self, site: str, now: datetime | None = None) -> int:
        """Trim the activity that left the window and notice a new local day; when either changed the
        numbers, bump the site's sequence and announce it (:data:`~footfall.live.counters.SWEEP_SCRIPT`).

        :return: the new sequence number, or 0 when nothing changed.
        :raises StoreUnavailable: Redis did not answer.
        """
        keys, args = _Plan(site, now or self.clock(), self.settings).sweep()
        try:
            return int(await self._sweep(keys=keys, args=args))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    async def aclose(self) -> None:
        """Close the Redis connection pool and the MongoDB client."""
        await self.client.aclose()
        if self.db is not None:
            await self.db.client.close()
