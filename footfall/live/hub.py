"""One live hub per server process: a single Redis subscriber fanning changes out to its streams.

Every change of a site's counters is announced by the track script on the site's pub/sub channel
(:mod:`footfall.live.counters`). A process subscribes once (``PSUBSCRIBE footfall:live:*``, one
connection whatever the number of streams), and for each site with listeners it re-reads the
counters (one O(1) round trip) and hands the new state to every listener. So every worker delivers
every change, whichever worker's request made it.

Coalescing, per site and process: a notice is answered at once when the last read is at least
``coalesce`` seconds old (leading edge); later notices in that interval are answered by one read when
it ends (trailing edge). A stream thus gets at most one message per ``coalesce`` seconds (1 s by
default) and never misses the last state. A listener keeps only the latest state (a slow client skips
states, it never queues them), and a state equal to the one it sent is not sent again.

Changes no request makes (a session leaving the active window, a new local day) are noticed by a
sweep that runs every ``sweep_interval`` seconds for each site with listeners
(:meth:`~footfall.live.store.AsyncLiveStore.sweep`), and announced like any other change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import redis
import redis.asyncio

from footfall.errors import StoreUnavailable
from footfall.live.counters import CHANNEL_PATTERN, build_stats, site_of_channel
from footfall.live.sse import LiveMessage
from footfall.live.store import AsyncLiveStore

__all__ = ["LiveHub", "Listener", "HubClosed"]

log = logging.getLogger("footfall.live")

RECONNECT_DELAY_MAX = 5.0  # seconds between attempts to resubscribe while Redis is down


class HubClosed(Exception):
    """The hub shut down (the server is stopping): the stream should end."""


@dataclass(eq=False)
class _Feed:
    """One site's state in this process."""

    site: str
    listeners: set[Listener] = field(default_factory=set)
    latest: LiveMessage | None = None
    last_read: float = -math.inf  # time.monotonic() of the last read
    reading: bool = False
    dirty: bool = False  # a notice came while a read was in flight
    timer: asyncio.TimerHandle | None = None


class Listener:
    """One open stream's view of a site: wakes up when a newer state is there."""

    def __init__(self, hub: LiveHub, feed: _Feed) -> None:
        self._hub = hub
        self._feed = feed
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """A newer state is available (called by the hub)."""
        self._changed.set()

    async def next(self, timeout: float) -> LiveMessage | None:
        """Wait up to ``timeout`` seconds for a newer state.

        :return: the latest state, or ``None`` when the time ran out (time for a heartbeat).
        :raises HubClosed: the hub shut down.
        """
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return None
        self._changed.clear()
        if self._hub.closed:
            raise HubClosed
        return self._feed.latest


class LiveHub:
    """The process's subscriber, coalescer and sweeper (see the module docstring).

    :param store: reads (and seeds) the counters and sweeps them.
    :param pubsub_client: a ``redis.asyncio`` client for the subscription (no socket timeout: the
        connection waits for messages).
    :param coalesce: minimum seconds between two reads, hence two messages, of one site.
    :param sweep_interval: seconds between two sweeps of a site with listeners.
    """

    def __init__(self, store: AsyncLiveStore, pubsub_client: redis.asyncio.Redis, *, coalesce: float = 1.0,
                 sweep_interval: float = 1.0) -> None:
        self.store = store
        self.client = pubsub_client
        self.coalesce = coalesce
        self.sweep_interval = sweep_interval
        self.closed = False
        self._feeds: dict[str, _Feed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._start_lock = asyncio.Lock()
        self._subscribed = asyncio.Event()
        self._pubsub: redis.asyncio.client.PubSub | None = None

    @contextlib.asynccontextmanager
    async def listen(self, site: str) -> AsyncIterator[Listener]:
        """Register a listener of ``site`` for the duration of the block (a stream's lifetime).

        :raises StoreUnavailable: the subscription could not be made (Redis down).
        """
        await self._start()
        feed = self._feeds.get(site)
        if feed is None:
            feed = self._feeds[site] = _Feed(site)
        listener = Listener(self, feed)
        feed.listeners.add(listener)
        try:
            yield listener
        finally:
            feed.listeners.discard(listener)
            if not feed.listeners:
                if feed.timer is not None:
                    feed.timer.cancel()
                self._feeds.pop(site, None)

    async def current(self, site: str) -> LiveMessage:
        """The site's current state: the latest one this process read while subscribed, else a
        fresh read (which seeds the counters from MongoDB once, if Redis lost them).

        :raises StoreUnavailable: Redis (or, for the one rebuild, MongoDB) did not answer.
        """
        feed = self._feeds.get(site)
        if feed is not None and feed.latest is not None and self._subscribed.is_set():
            return feed.latest
        return await self._read(feed or _Feed(site))

    async def _read(self, feed: _Feed) -> LiveMessage:
        now = self.store.clock()
        snapshot = await self.store.snapshot(feed.site, now)
        message = LiveMessage(snapshot.event_id, (snapshot.since_ms or 0, snapshot.seq), build_stats(snapshot, now=now))
        if feed.latest is None or message.order != feed.latest.order:
            feed.latest = message
            for listener in feed.listeners:
                listener.notify()
        return message

    def notice(self, site: str) -> None:
        """A change of ``site`` was announced: read now, or when the coalescing interval ends."""
        feed = self._feeds.get(site)
        if feed is None or self.closed:
            return  # nobody here listens to this site
        if feed.reading:
            feed.dirty = True
            return
        if feed.timer is not None:
            return  # a read is already due
        delay = max(0.0, feed.last_read + self.coalesce - time.monotonic())
        feed.timer = asyncio.get_running_loop().call_later(delay, self._spawn_read, feed)

    def _spawn_read(self, feed: _Feed) -> None:
        feed.timer = None
        task = asyncio.get_running_loop().create_task(self._scheduled_read(feed))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _scheduled_read(self, feed: _Feed) -> None:
        feed.reading, feed.dirty = True, False
        feed.last_read = time.monotonic()
        try:
            await self._read(feed)
        except StoreUnavailable as exc:
            log.warning("live numbers of %r not read: %s", feed.site, exc)
            feed.dirty = True  # try again after the interval
        finally:
            feed.reading = False
        if feed.dirty and feed.listeners and self._feeds.get(feed.site) is feed:
            self.notice(feed.site)

    async def _start(self) -> None:
        """Subscribe (once per process, on the first listener) and start the reader and sweeper."""
        if self._subscribed.is_set() or self.closed:
            return
        async with self._start_lock:
            if self._subscribed.is_set():
                return
            try:
                await self._subscribe()
            except redis.RedisError as exc:
                raise StoreUnavailable(f"Redis did not take the live subscription: {exc}") from exc
            loop = asyncio.get_running_loop()
            self._tasks += [loop.create_task(self._receive()), loop.create_task(self._sweep())]

    async def _subscribe(self) -> None:
        """``PSUBSCRIBE`` and wait for Redis to confirm it, so that no change after it is missed."""
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                await self._pubsub.aclose()
        self._pubsub = self.client.pubsub()
        await self._pubsub.psubscribe(CHANNEL_PATTERN)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = await self._pubsub.get_message(timeout=1.0)
            if message is not None and message["type"] == "psubscribe":
                self._subscribed.set()
                return
        raise redis.ConnectionError("no confirmation of PSUBSCRIBE within 5 s")

    async def _receive(self) -> None:
        """Hand every announced change to :meth:`notice`; resubscribe after a lost connection (and
        re-read every site then, since changes may have been missed meanwhile)."""
        delay = 0.1
        while not self.closed:
            try:
                if not self._subscribed.is_set():
                    await self._subscribe()
                    delay = 0.1
                    for site in list(self._feeds):
                        self.notice(site)
                pubsub = self._pubsub
                if pubsub is None:
                    raise redis.ConnectionError("not subscribed")
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message["type"] == "pmessage":
                    self.notice(site_of_channel(message["channel"]))
            except (redis.RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("live subscription lost, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(RECONNECT_DELAY_MAX, delay * 2)

    async def _sweep(self) -> None:
        while not self.closed:
            await asyncio.sleep(self.sweep_interval)
            for site in list(self._feeds):
                try:
                    await self.store.sweep(site)
                except StoreUnavailable as exc:
                    log.warning("live numbers of %r not swept: %s", site, exc)

    async def aclose(self) -> None:
        """Stop: wake every listener (their streams end with :class:`HubClosed`), cancel the tasks,
        close the subscription and the store."""
        self.closed = True
        for feed in self._feeds.values():
            if feed.timer is not None:
                feed.timer.cancel()
            for listener in feed.listeners:
                listener.notify()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                await self._pubsub.aclose()
        await self.client.aclose()
        await self.store.aclose()
