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

The track script itself announces a site's changes at most once per
:data:`~footfall.live.counters.NOTICE_GATE_MS` (250 ms): changes inside that gate are counted
but not announced. So after every notice received at ``t`` the hub also reads at or after
``t + gate``, which sees them: a change reaches the streams within ``coalesce + gate`` seconds
(1.25 s by default) plus a read, however busy the site, and a busy site costs each process at most
four notices a second instead of one per request.

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
from footfall.live.counters import CHANNEL_PATTERN, NOTICE_GATE_MS, build_stats, site_of_channel
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
    last_read: float = -math.inf  # time.monotonic() when the last read started
    need_until: float = -math.inf  # a read must start at or after this (changes the notice gate hid)
    reading: bool = False
    timer: asyncio.TimerHandle | None = None
    timer_at: float = math.inf  # time.monotonic() the timer fires at


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
        self.gate = NOTICE_GATE_MS / 1000
        self.sweep_interval = sweep_interval
        self.closed = False
        self._feeds: dict[str, _Feed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._initial: dict[str, asyncio.Task[LiveMessage]] = {}  # first reads, shared by streams opening together
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
            # a notice sent before this process listened to the site may have closed the gate on
            # changes it did not announce: read once the gate has surely opened again
            feed.need_until = time.monotonic() + self.gate
            self._schedule(feed, feed.need_until)
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
        fresh read (which seeds the counters from MongoDB once, if Redis lost them). Streams that
        open together share one read.

        :raises StoreUnavailable: Redis (or, for the one rebuild, MongoDB) did not answer.
        """
        feed = self._feeds.get(site)
        if feed is not None and feed.latest is not None and self._subscribed.is_set():
            return feed.latest
        task = self._initial.get(site)
        if task is None:
            task = self._initial[site] = asyncio.get_running_loop().create_task(self._read(site))
            task.add_done_callback(lambda _: self._initial.pop(site, None))
        return await asyncio.shield(task)

    async def _read(self, site: str) -> LiveMessage:
        """Read the site's state and hand it to its listeners if it is not the one they have."""
        now = self.store.clock()
        snapshot = await self.store.snapshot(site, now)
        order = (snapshot.since_ms or 0, snapshot.seq)
        message = LiveMessage.of(snapshot.event_id, order, build_stats(snapshot, now=now))
        feed = self._feeds.get(site)
        if feed is not None and (feed.latest is None or message.order != feed.latest.order):
            feed.latest = message
            for listener in feed.listeners:
                listener.notify()
        return message

    def notice(self, site: str) -> None:
        """A change of ``site`` was announced: read now, or when the coalescing interval ends, and
        once more after the notice gate (see the module docstring)."""
        feed = self._feeds.get(site)
        if feed is None or self.closed:
            return  # nobody here listens to this site
        now = time.monotonic()
        feed.need_until = max(feed.need_until, now + self.gate)
        if not feed.reading:
            self._schedule(feed, max(now, feed.last_read + self.coalesce))

    def _schedule(self, feed: _Feed, at: float) -> None:
        """Have a read start at ``at`` (monotonic), unless one is due earlier already."""
        if feed.timer is not None:
            if feed.timer_at <= at:
                return
            feed.timer.cancel()
        feed.timer_at = at
        feed.timer = asyncio.get_running_loop().call_later(max(0.0, at - time.monotonic()), self._spawn_read, feed)

    def _spawn_read(self, feed: _Feed) -> None:
        feed.timer = None
        task = asyncio.get_running_loop().create_task(self._scheduled_read(feed))
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    async def _scheduled_read(self, feed: _Feed) -> None:
        feed.reading = True
        feed.last_read = time.monotonic()
        try:
            await self._read(feed.site)
        except StoreUnavailable as exc:
            log.warning("live numbers of %r not read: %s", feed.site, exc)
            feed.need_until = max(feed.need_until, feed.last_read + self.coalesce)  # try again
        finally:
            feed.reading = False
        if feed.need_until > feed.last_read and feed.listeners and not self.closed:
            self._schedule(feed, max(feed.need_until, feed.last_read + self.coalesce))

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
        tasks = [*self._tasks, *self._initial.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError):
                await self._pubsub.aclose()
        await self.client.aclose()
        await self.store.aclose()
