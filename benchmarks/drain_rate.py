"""The drain's write path at a real site's size (issue 11): ``python -m benchmarks.drain_rate``.

Against the embedded default stores (Redis, and SecantusDB's ``secantusd-py`` with its WiredTiger
files on disk, :mod:`footfall.embedded`), on 127.0.0.1 only:

1. **preload** ``--stored`` page views (default 1,000,000) with their visits and visitors, shaped
   as the drain writes them (:func:`footfall.stores.documents.page_view_document`), by
   ``insert_many`` into unindexed collections and then the indexes (as
   :func:`benchmarks.query_data.load` does). With ``--data-dir`` a preloaded directory is reused;
2. **sustained rate**: queue ``--events`` stream entries (visits of ``--visitors`` visitors, each
   entry exactly what the track script appends: :func:`footfall.stores.event_codec.encode_payload`)
   and time one :class:`footfall.drain.Drain` (in this process, nothing else running in it) until
   the backlog is gone; rounds alternate a database holding the preload and an empty one, so "does
   the rate fall as data grows" is a ratio measured in the same run;
3. **lag**: with a drain running as its own process (``footfall drain``'s loop, with the rollup
   builder's passes off unless ``--rollups``), queue entries at a held rate
   (``--lag-rates``, default 80 % of ``--ingest``) for ``--lag-seconds``; every 0.5 s a probe entry
   with its own event id is queued and timed until its page view is in ``page_views``
   (accept-to-visible: from the moment the entry is in the stream, when ``/analytics/track`` would
   have answered, to the moment a query can count it).

It prints a markdown report with the targets' ratios. The track endpoint's throughput is not
measured here: ``--ingest`` defaults to the last one recorded in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from pymongo import MongoClient
from pymongo.database import Database

import footfall
from footfall.drain import Drain
from footfall.embedded import ServerProcess, start_mongodb, start_redis
from footfall.stores import mongo_writer
from footfall.stores.documents import PAGE_VIEWS, SESSIONS, VISITORS
from footfall.stores.event_codec import encode_payload
from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.redis_sessions import STREAM_KEY

__all__ = ["main", "preload", "queue_backlog", "RateResult", "LagResult"]

SITE = "bench"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
RATE_TARGET = 3000.0  # events/s, issue 11
LAG_TARGET = 2.0  # seconds, issue 11
INGEST_RECORDED = 1169.0  # track req/s, benchmarks/RESULTS.md (WSGI, gunicorn 1 worker, at 2eeba36)
PATHS = [f"/docs/{n}" for n in range(40)] + ["/", "/pricing", "/blog", "/signup"]
PRELOAD_BATCH = 10_000
T_PRELOAD = datetime(2026, 6, 1, tzinfo=UTC)
RUN_NUMBERS = int(time.time()) * 10**8  # visitor numbers of this run's visitors: unique per site, run after run


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _preload_documents(stored: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Synthetic documents, ``PRELOAD_BATCH`` page views at a time: 3 page views per visit, 2 visits
    per visitor, spread over 30 days."""
    rng = random.Random(11)
    for first in range(0, stored, PRELOAD_BATCH):
        views, sessions, visitors = [], [], []
        for n in range(first, min(stored, first + PRELOAD_BATCH)):
            session, visitor = n // 3, n // 6
            at = T_PRELOAD + timedelta(seconds=session * 7 % (30 * 86400) + n % 3 * 40)
            path = rng.choice(PATHS)
            views.append({"_id": f"pre-{n}", "site": SITE, "session_id": f"pre-s{session}",
                          "visitor_id": f"pre-v{visitor}", "ts": at, "path": path, "query": "", "referrer": "",
                          "title": "", "visitor_number": visitor + 1, "route": None, "device": "desktop",
                          "browser": "Chrome", "os": "Linux", "country": "DE"})
            if n % 3 == 0:
                sessions.append({"_id": f"pre-s{session}", "site": SITE, "visitor_id": f"pre-v{visitor}",
                                 "visitor_number": visitor + 1, "started_at": at,
                                 "last_seen_at": at + timedelta(seconds=80),
                                 "first_view_at": at, "last_view_at": at + timedelta(seconds=80), "page_views": 3,
                                 "events": 0, "entry_path": path, "exit_path": path, "paths": [path], "routes": [],
                                 "event_names": [], "referrer": "", "referrer_host": None, "user_agent": UA,
                                 "device": "desktop", "browser": "Chrome", "os": "Linux", "country": "DE",
                                 "city": None, "utm_source": None, "utm_medium": None, "utm_campaign": None,
                                 "start_recorded": True, "hours": [at.replace(minute=0, second=0, microsecond=0)]})
            if n % 6 == 0:
                visitors.append({"_id": f"{SITE}|pre-v{visitor}", "site": SITE, "visitor_id": f"pre-v{visitor}",
                                 "visitor_number": visitor + 1, "first_seen_at": at, "last_seen_at": at})
        yield PAGE_VIEWS, views
        yield SESSIONS, sessions
        yield VISITORS, visitors


def preload(db: Database, stored: int) -> float:
    """Write ``stored`` synthetic page views (and their visits and visitors) into ``db`` unless it
    already holds them, then its indexes.

    :return: seconds taken (0 when the data was there).
    """
    if db[PAGE_VIEWS].estimated_document_count() >= stored:
        ensure_indexes(db)
        return 0.0
    db.client.drop_database(db.name)
    started = time.perf_counter()
    for collection, docs in _preload_documents(stored):
        if docs:
            db[collection].insert_many(docs, ordered=False)
    ensure_indexes(db)
    return time.perf_counter() - started


@dataclass
class Visitor:
    visitor_id: str
    session_id: str
    number: int
    seconds: float = 0.0
    started: bool = False


def entries(count: int, visitors: list[Visitor], rng: random.Random, at: datetime,
            custom_share: float = 0.05) -> Iterator[dict[str, str]]:
    """``count`` stream entries, round-robin over ``visitors`` (as the track benchmark replays its
    jars): a visitor's first entry starts its visit (start + page view), the rest are page views, a
    ``custom_share`` of them custom events; every entry carries the visitor's number, as the track
    script's do."""
    for n in range(count):
        visitor = visitors[n % len(visitors)]
        visitor.seconds += rng.uniform(1, 20)
        view: dict[str, Any] = {"event_id": str(uuid.uuid4()), "site": SITE, "path": rng.choice(PATHS),
                                "query": "utm_source=news" if not visitor.started else "", "referrer": "",
                                "title": "", "route": None}
        if visitor.started and rng.random() < custom_share:
            view.update(type="custom", name="signup", props={"plan": "pro"})
        new = not visitor.started
        visitor.started = True
        payload = encode_payload(site=SITE, visitor_id=visitor.visitor_id, at=at + timedelta(seconds=visitor.seconds),
                                 referrer="https://news.example/" if new else "", user_agent=UA, page_view=view,
                                 host="bench.example", country="FR")
        yield {"e": payload, "sid": visitor.session_id, "new": "1" if new else "0", "vn": str(visitor.number)}


def queue_backlog(client: redis.Redis, count: int, visitors: int, seed: int) -> None:
    """Queue ``count`` entries for ``visitors`` fresh visitors (pipelined ``XADD``)."""
    rng = random.Random(seed)
    people = [Visitor(str(uuid.uuid4()), uuid.uuid4().hex[:22], RUN_NUMBERS + seed * 10**5 + n)
              for n in range(visitors)]
    now = datetime.now(UTC)
    pipe = client.pipeline(transaction=False)
    for n, fields in enumerate(entries(count, people, rng, now), start=1):
        pipe.xadd(STREAM_KEY, fields)  # type: ignore[arg-type]
        if n % 1000 == 0:
            pipe.execute()
    pipe.execute()


@dataclass
class RateResult:
    """One drain run on a queued backlog. ``windows``: events/s per tenth of the backlog;
    ``writes``: collection → (bulk operations sent, wall seconds in those bulk writes)."""

    label: str
    events: int
    seconds: float
    cpu_drain: float
    cpu_mongodb: float
    windows: list[float] = field(default_factory=list)
    writes: dict[str, list[float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def measure_rate(label: str, client: redis.Redis, db: Database, mongodb_pid: int, *, events: int, visitors: int,
                 batch_size: int, seed: int, max_batch_size: int | None = None) -> RateResult:
    """Queue ``events`` entries, then drain them with one :class:`Drain` and time it."""
    client.delete(STREAM_KEY)
    queue_backlog(client, events, visitors, seed)
    sizes = {"max_batch_size": max_batch_size} if max_batch_size else {}  # (absent from older drains)
    drain = Drain(client, db, consumer=f"bench-{label}", batch_size=batch_size, **sizes)
    drain.ensure_group()
    ensure_indexes(db)
    writes: dict[str, list[float]] = {}
    bulk = mongo_writer._bulk

    def timed_bulk(db: Database, collection: str, ops: list[Any], *args: Any) -> set[int]:
        began = time.perf_counter()
        try:
            return bulk(db, collection, ops, *args)
        finally:
            tally = writes.setdefault(collection, [0.0, 0.0])
            tally[0] += len(ops)
            tally[1] += time.perf_counter() - began

    mongo_writer._bulk = timed_bulk  # type: ignore[assignment]  # the benchmark's own accounting
    cpu0, mongo0 = time.process_time(), _cpu_seconds(mongodb_pid)
    started = time.perf_counter()
    done, steps = 0, [(0, started)]
    try:
        while n := drain.step(block=False):
            done += n
            steps.append((done, time.perf_counter()))
    finally:
        mongo_writer._bulk = bulk
    seconds = time.perf_counter() - started
    windows, (mark_n, mark_t) = [], steps[0]
    for count, at in steps[1:]:  # whole batches, grouped into about a tenth of the backlog each
        if count - mark_n >= events / 10 or count == done:
            windows.append((count - mark_n) / (at - mark_t))
            mark_n, mark_t = count, at
    return RateResult(label, done, seconds, time.process_time() - cpu0, _cpu_seconds(mongodb_pid) - mongo0, windows,
                      writes)


@dataclass
class LagResult:
    """A held-rate run with ``footfall drain`` running."""

    rate: float
    achieved: float
    delays: list[float]
    unseen: int
    max_backlog: int

    @property
    def worst(self) -> float:
        return max(self.delays, default=float("nan"))

    def quantile(self, q: float) -> float:
        ordered = sorted(self.delays)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def lag_run(client: redis.Redis, db: Database, *, rate: float, seconds: float, visitors: int,
            seed: int) -> LagResult:
    """Queue ``rate`` entries/s for ``seconds`` (a tick every 50 ms) with a drain process running;
    time probe entries until their page views are visible."""
    rng = random.Random(seed)
    people = [Visitor(str(uuid.uuid4()), uuid.uuid4().hex[:22], RUN_NUMBERS + seed * 10**5 + n)
              for n in range(visitors)]
    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    stop = threading.Event()
    backlog_max = 0

    def watch() -> None:
        while not stop.is_set() or len(seen) < len(accepted):
            waiting = [event_id for event_id in accepted if event_id not in seen]
            if waiting:
                found = [doc["_id"] for doc in db[PAGE_VIEWS].find({"_id": {"$in": waiting}}, {"_id": 1})]
                now = time.monotonic()
                for event_id in found:
                    seen[event_id] = now - accepted[event_id]
            if stop.is_set() and time.monotonic() > deadline:
                return
            time.sleep(0.02)

    deadline = float("inf")
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    source = entries(10**9, people, rng, datetime.now(UTC))
    started = time.monotonic()
    queued, next_probe = 0, started
    while (now := time.monotonic()) < started + seconds:
        due = int((now - started) * rate) - queued
        pipe = client.pipeline(transaction=False)
        for _ in range(max(0, due)):
            pipe.xadd(STREAM_KEY, next(source))  # type: ignore[arg-type]
        pipe.execute()
        queued += max(0, due)
        if now >= next_probe:
            fields = next(source)
            payload = json.loads(fields["e"])
            event_id = payload["page_view"]["event_id"]
            client.xadd(STREAM_KEY, fields)  # type: ignore[arg-type]
            accepted[event_id] = time.monotonic()
            queued += 1
            next_probe += 0.5
        backlog_max = max(backlog_max, int(client.xlen(STREAM_KEY)))
        time.sleep(0.05)
    achieved = queued / (time.monotonic() - started)
    deadline = time.monotonic() + 30
    stop.set()
    watcher.join(35)
    return LagResult(rate, achieved, sorted(seen.values()), len(accepted) - len(seen), backlog_max)


def _sum_writes(results: list[RateResult]) -> dict[str, list[float]]:
    total: dict[str, list[float]] = {}
    for result in results:
        for name, (ops, secs) in result.writes.items():
            tally = total.setdefault(name, [0.0, 0.0])
            tally[0] += ops
            tally[1] += secs
    return total


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drain_rate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=1_000_000, help="page views preloaded (default 1,000,000)")
    parser.add_argument("--events", type=int, default=30_000, help="backlog per rate round (default 30,000)")
    parser.add_argument("--visitors", type=int, default=1000, help="visitors the backlog cycles over (default 1000)")
    parser.add_argument("--batch-size", type=int, default=500, help="drain batch size (default 500, as shipped)")
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help="largest batch while a backlog lasts (default: the drain's, 10 × --batch-size)")
    parser.add_argument("--rounds", type=int, default=2, help="rate rounds, each: preloaded then empty (default 2)")
    parser.add_argument("--ingest", type=float, default=INGEST_RECORDED,
                        help=f"track endpoint throughput, req/s (default {INGEST_RECORDED:g}, from RESULTS.md)")
    parser.add_argument("--lag-rates", type=float, nargs="*", default=None,
                        help="held rates for the lag runs (default: 80 %% of --ingest)")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="length of each lag run (default 20)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep (and reuse) the stores' files here")
    parser.add_argument("--skip-rate", action="store_true", help="only the lag runs")
    parser.add_argument("--skip-lag", action="store_true", help="only the rate rounds")
    parser.add_argument("--rollups", action="store_true",
                        help="lag runs with `footfall drain` as shipped, rollup builder passes included "
                             "(default: the same drain with the builder off, to measure the write path)")
    parser.add_argument("--run-drain", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_drain() -> None:
    """``footfall drain`` with the rollup builder off (where the drain has one): runs until SIGTERM."""
    import inspect
    import signal

    from footfall.settings import Settings
    from footfall.stores.connect import mongo_database, redis_client

    settings = Settings.from_env()
    off = {"rollup_every": 0} if "rollup_every" in inspect.signature(Drain).parameters else {}
    worker = Drain(redis_client(settings, for_drain=True), mongo_database(settings),
                   batch_size=settings.drain_batch_size, **off)  # type: ignore[arg-type]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.run(stop)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its report; see the module docstring."""
    options = _parse(argv)
    if options.run_drain:
        run_drain()
        return 0
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="footfall-drain-rate-"))
    servers: list[ServerProcess] = []
    out: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        out.append(line)

    try:
        mongodb = start_mongodb(data_dir)
        servers.append(mongodb)
        rds = start_redis(None)
        servers.append(rds)
        client = redis.Redis.from_url(rds.url, socket_timeout=30)
        mongo: MongoClient = MongoClient(mongodb.url, tz_aware=True)
        big, empty = mongo["footfall"], mongo["footfall_empty"]
        pid = mongodb.process.pid if mongodb.process else 0
        loaded = preload(big, options.stored)
        stored = big[PAGE_VIEWS].estimated_document_count()
        say(f"# Drain write path (issue 11), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        say()
        code = Path(footfall.__file__).resolve().parent
        commit = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=False).stdout.strip()
        say(f"- code: footfall from `{code}` at `{commit}`" + (" (with uncommitted changes)" if dirty else ""))
        say(f"- stores: embedded Redis; SecantusDB `secantusd-py`, files on disk in `{data_dir}`")
        say(f"- preloaded: {stored:,} page views, {big[SESSIONS].estimated_document_count():,} visits, "
            f"{big[VISITORS].estimated_document_count():,} visitors"
            + (f" (loaded in {loaded:.0f} s)" if loaded else " (reused)"))
        say(f"- load average before: {os.getloadavg()[0]:.2f} (nproc {os.cpu_count()})")
        say()
        results: list[RateResult] = []
        if not options.skip_rate:
            largest = options.max_batch_size or "the drain's default"
            say(f"## Sustained drain rate (backlog {options.events:,} entries, {options.visitors:,} visitors, "
                f"batch {options.batch_size}, largest batch {largest})")
            say()
            say("| round | database | events | seconds | events/s | per tenth of the backlog (events/s) | "
                "CPU ms/event drain / mongodb | load avg |")
            say("|---|---|---|---|---|---|---|---|")
            for n in range(options.rounds):
                for label, db in (("preloaded", big), ("empty", empty)):
                    if db is empty:
                        mongo.drop_database(empty.name)
                    r = measure_rate(label, client, db, pid, events=options.events, visitors=options.visitors,
                                     batch_size=options.batch_size, seed=n,
                                     max_batch_size=options.max_batch_size)
                    results.append(r)
                    say(f"| {n + 1} | {label} | {r.events:,} | {r.seconds:.1f} | **{r.rate:,.0f}** | "
                        f"{' '.join(f'{w:,.0f}' for w in r.windows)} | {r.cpu_drain * 1000 / r.events:.2f} / "
                        f"{r.cpu_mongodb * 1000 / r.events:.2f} | {os.getloadavg()[0]:.2f} |")
            say()
            say("Where the drain's time went (bulk writes, all rounds): "
                + "; ".join(f"`{name}` {ops:,.0f} ops, {secs:.1f} s, {secs * 1000 / max(ops, 1):.2f} ms/op"
                            for name, (ops, secs) in _sum_writes(results).items()))
            full = [r.rate for r in results if r.label == "preloaded"]
            fresh = [r.rate for r in results if r.label == "empty"]
            best_full = max(full)
            say()
            ratios = " / ".join(f"{a / b:.2f}" for a, b in zip(full, fresh, strict=False))
            say(f"- preloaded: {' / '.join(f'{x:,.0f}' for x in full)} events/s; **{best_full / RATE_TARGET:.2f}×** "
                f"the 3,000 events/s target (best round), {min(full) / RATE_TARGET:.2f}× (worst)")
            say(f"- preloaded ÷ empty, same round: {ratios} (1.00 = the rate does not fall as data grows)")
            say()
        rates = [] if options.skip_lag else options.lag_rates or [0.8 * options.ingest]
        say(f"## Accept-to-visible lag (target ≤ {LAG_TARGET:g} s at 80 % of the track endpoint's throughput; "
            f"--ingest {options.ingest:g} req/s, not measured in this run)")
        say()
        say("| held rate (asked / achieved, events/s) | probes | median | p95 | max | not visible | max backlog | "
            "verdict |")
        say("|---|---|---|---|---|---|---|---|")
        env = {**os.environ, "FOOTFALL_REDIS_URL": rds.url, "FOOTFALL_MONGODB_URI": mongodb.url,
               "FOOTFALL_DRAIN_BATCH_SIZE": str(options.batch_size)}
        for n, rate in enumerate(rates):
            client.delete(STREAM_KEY)
            argv = ["-m", "footfall", "drain"] if options.rollups else ["-m", "benchmarks.drain_rate", "--run-drain"]
            drain = subprocess.Popen([sys.executable, *argv], env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                time.sleep(3)  # imports, connections, group
                lag = lag_run(client, big, rate=rate, seconds=options.lag_seconds, visitors=options.visitors,
                              seed=100 + n)
            finally:  # killed: what it has not written yet is this run's load, not worth flushing
                drain.kill()
                drain.wait(60)
            verdict = "met" if lag.unseen == 0 and lag.worst <= LAG_TARGET else "missed"
            say(f"| {rate:,.0f} / {lag.achieved:,.0f} | {len(lag.delays)} | {lag.quantile(0.5):.2f} s | "
                f"{lag.quantile(0.95):.2f} s | {lag.worst:.2f} s | {lag.unseen} | {lag.max_backlog:,} | "
                f"**{verdict}** (max {lag.worst / LAG_TARGET:.2f}× the 2 s target) |")
        say()
        say(f"- load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for server in reversed(servers):
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
