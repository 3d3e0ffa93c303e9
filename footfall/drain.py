"""The drain: moves queued events from the Redis Stream into MongoDB, in batches, exactly once.

Anchors: Snowplow's collector → stream → loader; Plausible's write buffer. The request path only
appends to ``footfall:events`` (:mod:`footfall.stores.redis_sessions`); a drain reads it with a
consumer group, writes each batch with idempotent writes, one update per visit per batch
(:func:`footfall.stores.mongo_writer.write_batch`),
and only then acknowledges and deletes the entries, with the batch's counts, in one Redis
transaction. Hence, per failure:

- MongoDB down: the batch stays pending in Redis and is written again, with backoff, until MongoDB
  answers; nothing is lost, and the idempotent writes store it once.
- the drain killed (even SIGKILL) mid-batch: its pending entries are written again by the next
  drain with the same consumer name, or claimed (``XAUTOCLAIM``) by any drain once idle for
  ``claim_idle`` seconds.
- an entry that cannot be decoded or a document MongoDB rejects: moved to
  ``footfall:events:dead`` with the reason and counted as ``failed``; the rest of the batch is stored.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from pymongo.database import Database

from footfall.errors import StoreUnavailable
from footfall.stores.event_codec import EntryError, QueuedRecords, decode_entry
from footfall.stores.mongo_writer import SpanCache, ensure_indexes, write_batch
from footfall.stores.redis_sessions import COUNTERS_KEY, KEY_PREFIX, STREAM_KEY
from footfall.stores.rollup_build import refresh as refresh_rollups

__all__ = ["Drain", "DEAD_LETTER_KEY", "GROUP", "backlog", "next_batch_size"]

log = logging.getLogger("footfall.drain")

GROUP = "footfall-drain"
DEAD_LETTER_KEY = KEY_PREFIX + "events:dead"
MAX_BACKOFF = 5.0  # seconds between retries while a store is down
STOP_WAIT = 2.0  # seconds a stopping drain waits for its rollup builder's pass to end


@dataclass(frozen=True, slots=True)
class Backlog:
    """The stream's state: entries not yet written (``length``) and how old the oldest is (seconds)."""

    length: int
    lag_seconds: float


def backlog(client: redis.Redis, now: float | None = None) -> Backlog:
    """Measure the backlog: entries waiting or in flight, and the age of the oldest.

    :param now: the current UNIX time in seconds (``time.time()`` when ``None``).
    :raises redis.RedisError: Redis did not answer.
    """
    length = int(client.xlen(STREAM_KEY))
    if not length:
        return Backlog(0, 0.0)
    oldest: Any = client.xrange(STREAM_KEY, count=1)
    if not oldest:
        return Backlog(0, 0.0)
    entry_ms = int(_id(oldest[0][0]).split("-")[0])
    now = time.time() if now is None else now
    return Backlog(length, max(0.0, now - entry_ms / 1000))


def next_batch_size(current: int, got: int, batch_size: int, max_batch_size: int) -> int:
    """The next read's size: double ``current`` (up to ``max_batch_size``) after a full read, back
    to ``batch_size`` after one that was not full (the drain has caught up).

    :param current: the size the last read asked for; ``got`` how many entries it returned.
    """
    return min(current * 2, max_batch_size) if got >= current else batch_size


def _id(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Drain:
    """One consumer of the event stream.

    :param client: a Redis client whose socket timeout exceeds ``block`` (see
        :func:`footfall.stores.connect.redis_client` with ``for_drain=True``).
    :param db: the footfall MongoDB database.
    :param consumer: this consumer's name in the group; ``host-pid`` when ``None``. A drain restarted
        with the same name takes its own pending entries back at once.
    :param batch_size: entries per MongoDB batch while the drain keeps up.
    :param max_batch_size: the largest batch while a backlog lasts (default 10 × ``batch_size``):
        each read that comes back full doubles the next one's size up to this, and a read that
        does not resets it (:func:`next_batch_size`). A batch writes one update per visit, so a
        bigger batch merges more of each visit's events into one write (issue 11).
    :param block: seconds to wait for new entries per read.
    :param claim_idle: seconds after which another consumer's unacknowledged entries are claimed.
    :param rollup_every: seconds between two passes of the rollup builder
        (:func:`footfall.stores.rollup_build.refresh`), which :meth:`run` runs in a thread of its own;
        0 turns it off.
    """

    def __init__(
        self,
        client: redis.Redis,
        db: Database,
        *,
        consumer: str | None = None,
        batch_size: int = 500,
        max_batch_size: int | None = None,
        block: float = 1.0,
        claim_idle: float = 30.0,
        rollup_every: float = 5.0,
    ) -> None:
        self.client = client
        self.db = db
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.batch_size = batch_size
        self.max_batch_size = max(batch_size, max_batch_size or 10 * batch_size)
        self._count = batch_size  # the next read's size (next_batch_size)
        self.block_ms = int(block * 1000)
        self.claim_idle_ms = int(claim_idle * 1000)
        self._own_pending = True  # after a start or a failed batch, our own pending entries come first
        self._next_claim = 0.0
        self._group_ready = False
        self._indexes_ready = False
        self._spans = SpanCache()  # the entry/exit times this drain last wrote per visit: a hint only
        self.rollup_every = rollup_every

    def ensure_group(self) -> None:
        """Create the consumer group (and the stream) if missing; entries already queued are kept.

        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            self.client.xgroup_create(STREAM_KEY, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StoreUnavailable(f"Redis refused the consumer group: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        self._group_ready = True

    def _read(self, block: bool) -> list[tuple[Any, dict[Any, Any]]]:
        if self._own_pending:
            rows: Any = self.client.xreadgroup(GROUP, self.consumer, {STREAM_KEY: "0"}, count=self._count)
            entries: list[Any] = rows[0][1] if rows else []
            ghosts = [entry_id for entry_id, fields in entries if not fields]  # deleted while pending
            if ghosts:
                self.client.xack(STREAM_KEY, GROUP, *ghosts)
            if entries:
                return [(entry_id, fields) for entry_id, fields in entries if fields]
            self._own_pending = False
        if time.monotonic() >= self._next_claim:
            claimed: Any = self.client.xautoclaim(STREAM_KEY, GROUP, self.consumer, self.claim_idle_ms,
                                             start_id="0-0", count=self._count)
            self._next_claim = time.monotonic() + max(self.claim_idle_ms / 4000, 0.05)
            entries = [(entry_id, fields) for entry_id, fields in claimed[1] if fields]
            if entries:
                return entries
        rows = self.client.xreadgroup(GROUP, self.consumer, {STREAM_KEY: ">"}, count=self._count,
                                      block=self.block_ms if block else None)
        return list(rows[0][1]) if rows else []

    def step(self, *, block: bool = True) -> int:
        """Read one batch and write it.

        :param block: wait up to ``block`` seconds for new entries when none are waiting.
        :return: how many entries were handled (0: the stream had nothing for this consumer).
        :raises StoreUnavailable: Redis or MongoDB did not answer; the batch stays pending and is
            taken up again by the next call.
        """
        try:
            if not self._group_ready:
                self.ensure_group()
            entries = self._read(block)
        except redis.ResponseError as exc:
            if "NOGROUP" in str(exc):  # the stream lost its group (Redis flushed or restarted empty)
                self._group_ready = False
            raise StoreUnavailable(f"Redis refused the read: {exc}") from exc
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        self._count = next_batch_size(self._count, len(entries), self.batch_size, self.max_batch_size)
        if not entries:
            return 0
        try:
            if not self._indexes_ready:
                ensure_indexes(self.db)
                self._indexes_ready = True
            self._write(entries)
        except StoreUnavailable:
            self._own_pending = True
            raise
        return len(entries)

    def _write(self, entries: Sequence[tuple[Any, dict[Any, Any]]]) -> None:
        decoded: list[tuple[str, QueuedRecords]] = []
        dead: dict[str, tuple[dict[Any, Any], str]] = {}
        for raw_id, fields in entries:
            entry_id = _id(raw_id)
            try:
                decoded.append((entry_id, decode_entry(fields)))
            except EntryError as exc:
                dead[entry_id] = (fields, f"undecodable: {exc}")
        outcome = write_batch(self.db, decoded, self._spans)
        fields_of = {_id(raw_id): fields for raw_id, fields in entries}
        for entry_id, reason in outcome.failed.items():
            dead[entry_id] = (fields_of[entry_id], reason)
        ids = [_id(raw_id) for raw_id, _ in entries]
        try:
            with self.client.pipeline(transaction=True) as pipe:
                for entry_id, (fields, reason) in dead.items():
                    pipe.xadd(DEAD_LETTER_KEY, {**fields, "entry_id": entry_id, "reason": reason[:500]})
                pipe.xack(STREAM_KEY, GROUP, *ids)
                pipe.xdel(STREAM_KEY, *ids)
                pipe.hincrby(COUNTERS_KEY, "written", len(ids) - len(dead))
                if dead:
                    pipe.hincrby(COUNTERS_KEY, "failed", len(dead))
                pipe.execute()
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not take the acknowledgement: {exc}") from exc
        for entry_id, (_, reason) in dead.items():
            log.error("event %s set aside in %s: %s", entry_id, DEAD_LETTER_KEY, reason)

    def _refresh_rollups(self, *, every_site: bool = False) -> None:
        """One pass of the rollup builder; a failure is logged and retried at the next pass, never
        fatal: the raw data is already safe."""
        try:
            refresh_rollups(self.db, every_site=every_site)
        except StoreUnavailable as exc:
            log.warning("drain %s: rollups not refreshed: %s", self.consumer, exc)
        except Exception:  # a bug in the builder must not stop the builder's thread for good
            log.exception("drain %s: the rollup builder failed", self.consumer)

    def _rollup_loop(self, stop: threading.Event) -> None:
        """The rollup builder's thread: a pass every ``rollup_every`` seconds until ``stop`` (the
        first one also builds every site with data). In a thread of its own, so that building a large
        history (a site first met) never holds up the writing of events."""
        every_site = True
        while True:
            self._refresh_rollups(every_site=every_site)
            every_site = False
            if stop.wait(self.rollup_every):
                return

    def drain_all(self) -> int:
        """Write everything queued now, without waiting for more (tests, shutdown).

        :return: entries handled.
        :raises StoreUnavailable: a store did not answer.
        """
        total = 0
        while n := self.step(block=False):
            total += n
        return total

    def run(self, stop: threading.Event, *, flush_timeout: float = 30.0) -> None:
        """Drain until ``stop`` is set, then write what is still queued (for at most
        ``flush_timeout`` seconds) and return. Store failures are retried with exponential backoff
        (50 ms doubling to 5 s); they never end the loop.
        """
        delay = 0.0
        deadline: float | None = None
        builder = None
        if self.rollup_every:
            builder = threading.Thread(target=self._rollup_loop, args=(stop,), name="footfall-rollups", daemon=True)
            builder.start()
        while True:
            stopping = stop.is_set()
            if stopping and deadline is None:
                deadline = time.monotonic() + flush_timeout
                self.max_batch_size = self._count = self.batch_size  # short steps: the deadline is checked between them
                log.info("drain %s stopping: writing what is queued", self.consumer)
            try:
                handled = self.step(block=not stopping)
            except StoreUnavailable as exc:
                delay = min(max(0.05, delay * 2), MAX_BACKOFF)
                log.warning("drain %s: %s; retrying in %.2f s", self.consumer, exc, delay)
                if deadline is not None and time.monotonic() + delay > deadline:
                    log.error("drain %s stopped with events still queued in Redis (kept for the next drain)",
                              self.consumer)
                    return
                (time.sleep if stopping else stop.wait)(delay)
                continue
            delay = 0.0
            if stopping and handled == 0:
                if builder is not None:  # a last pass for what was just written, unless a pass is still
                    builder.join(timeout=STOP_WAIT)  # running: its marks stay for the next drain to build
                    if not builder.is_alive():
                        self._refresh_rollups()
                log.info("drain %s stopped: nothing queued", self.consumer)
                return
