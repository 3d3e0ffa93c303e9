"""The benchmark: ``.venv/bin/python -m benchmarks.run`` (about 5 minutes with the defaults).

One run, on 127.0.0.1 only, with throwaway stores:

1. starts Redis and the MongoDB-wire server (:mod:`footfall.embedded`, no data dir), and two gunicorn
   servers with the same configuration: the bare Flask app and the same app wrapped by footfall
   (:mod:`benchmarks.apps`);
2. pre-creates ``--visitors`` visitors (their cookie jars) and writes their visits to MongoDB;
3. page requests, saturated, alternating bare/footfall, for same-session traffic (the jars
   replayed) and new-visitor traffic (no cookies); then the same at a held rate for the added p99;
4. counts Redis round trips per request kind (MONITOR), and times footfall in-process;
5. ``POST /analytics/track`` rounds (no drain running), alternating with the bare app; then starts
   ``footfall drain`` on that backlog for its sustained rate; then holds 80 % of the ingest rate,
   and 80 % of the drain's rate, with the drain running, sampling backlog and lag;
6. profiles the footfall worker and the drain with py-spy, and the wrapped app in-process with
   pyinstrument, when they are installed.

It prints a markdown report (and writes it with ``--report FILE``); every process it started is
stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import redis

from benchmarks.drain_load import DrainResult, LagResult, clear_backlog, lag_run, measure_drain
from benchmarks.inprocess import Breakdown, measure_inprocess
from benchmarks.profiling import Profile, find_py_spy, read_profile, start_py_spy
from benchmarks.report import Report, Sample, median_rate
from benchmarks.round_trips import count_round_trips
from benchmarks.servers import DrainProcess, Gunicorn, GunicornConfig, benchmark_env, cpu_seconds, passed_settings
from benchmarks.visitors import create_visitors, write_jars
from benchmarks.wrk import WrkLoad, run_wrk
from footfall.drain import Drain
from footfall.embedded import ServerProcess, start_mongodb, start_redis
from footfall.settings import Settings
from footfall.stores.connect import mongo_database, redis_client

__all__ = ["main"]

ROUND_TRIP_REQUESTS = 200  # per request kind: more than a block of visitor numbers (100)
TRACK_BODY = {"eventType": "page_view", "path": "/bench/page", "title": "Benchmark page",
              "referrer": "https://example.com/"}


@dataclass(frozen=True)
class Options:
    """The command line, parsed."""

    seconds: float
    rounds: int
    visitors: int
    connections: int
    config: GunicornConfig
    profile: bool
    report: Path | None
    out: Path


def _parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (default 3)")
    parser.add_argument("--visitors", type=int, default=1000, help="pre-created visitors replayed (default 1000)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers, both apps (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per worker (default 4)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument("--report", type=Path, help="also write the markdown report to this file")
    parser.add_argument("--out", type=Path, help="directory for logs and raw profiles (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.seconds < 1 or not 1 <= args.rounds <= 20 or not 2 <= args.visitors <= 100_000:
        parser.error("--seconds must be ≥ 1, --rounds 1..20, --visitors 2..100000")
    if not 1 <= args.connections <= 1000 or not 1 <= args.workers <= 16 or not 1 <= args.threads <= 64:
        parser.error("--connections must be 1..1000, --workers 1..16, --threads 1..64")
    out = args.out or Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    return Options(args.seconds, args.rounds, args.visitors, args.connections,
                   GunicornConfig(workers=args.workers, threads=args.threads),
                   profile=not args.no_profile and find_py_spy() is not None, report=args.report, out=out)


@dataclass
class Bench:
    """The running servers and the inputs every phase shares."""

    opts: Options
    redis_server: ServerProcess
    mongodb: ServerProcess
    bare: Gunicorn
    wrapped: Gunicorn
    drain: DrainProcess
    jars: Path
    spare_jars: list[str]
    body: Path

    @property
    def redis_pid(self) -> int:
        """The Redis server's pid."""
        return self.redis_server.process.pid if self.redis_server.process else 0

    @property
    def mongodb_pid(self) -> int:
        """The MongoDB-wire server's pid."""
        return self.mongodb.process.pid if self.mongodb.process else 0

    def load(self, *, cookies: bool, body: bool = False, pace_ms: int | None = None) -> WrkLoad:
        """The wrk load: jars replayed or none, a track body or none."""
        return WrkLoad(cookies=self.jars if cookies else None, body=self.body if body else None,
                       connections=self.opts.connections, pace_ms=pace_ms)

    def sample(self, server: Gunicorn, path: str, load: WrkLoad, seconds: float | None = None) -> Sample:
        """One wrk run against ``server``, with its workers' and Redis's CPU per request."""
        workers = server.worker_pids()
        worker0, redis0 = cpu_seconds(workers), cpu_seconds([self.redis_pid])
        result = run_wrk(server.url + path, load, seconds or self.opts.seconds)
        count = max(result.requests, 1)
        return Sample(result, (cpu_seconds(workers) - worker0) * 1e6 / count,
                      (cpu_seconds([self.redis_pid]) - redis0) * 1e6 / count)


def _alternate(bench: Bench, round_index: int) -> list[tuple[str, Gunicorn]]:
    pair = [("bare", bench.bare), ("footfall", bench.wrapped)]
    return pair if round_index % 2 == 0 else pair[::-1]


def page_rounds(bench: Bench) -> dict[tuple[str, str], list[Sample]]:
    """Saturated page requests: (traffic, app) → one sample per round."""
    loads = {"same-session": bench.load(cookies=True), "new-visitor": bench.load(cookies=False)}
    for load in loads.values():  # warm-up: imports, connections, the script loaded
        for server in (bench.bare, bench.wrapped):
            run_wrk(server.url + "/", load, 1)
    results: dict[tuple[str, str], list[Sample]] = {}
    for r in range(bench.opts.rounds):
        for traffic, load in loads.items():
            for app, server in _alternate(bench, r):
                results.setdefault((traffic, app), []).append(bench.sample(server, "/", load))
    return results


def paced_rounds(bench: Bench, pages: dict[tuple[str, str], list[Sample]]) -> dict[tuple[str, str], list[Sample]]:
    """Page requests at a held rate, half of footfall's saturated rate, for the added p99."""
    results: dict[tuple[str, str], list[Sample]] = {}
    for traffic, cookies in (("same-session", True), ("new-visitor", False)):
        rate = median_rate(pages[(traffic, "footfall")]) / 2
        load = bench.load(cookies=cookies, pace_ms=max(1, round(bench.opts.connections * 1000 / rate)))
        for r in range(bench.opts.rounds):
            for app, server in _alternate(bench, r):
                results.setdefault((traffic, app), []).append(bench.sample(server, "/", load))
    return results


def track_rounds(bench: Bench) -> tuple[list[Sample], list[Sample]]:
    """``POST /analytics/track`` (drain stopped) alternating with the bare app's same-session GET."""
    track_load, bare_load = bench.load(cookies=True, body=True), bench.load(cookies=True)
    run_wrk(bench.wrapped.url + "/analytics/track", track_load, 1)
    track: list[Sample] = []
    bare: list[Sample] = []
    for r in range(bench.opts.rounds):
        for app, server in _alternate(bench, r):
            if app == "bare":
                bare.append(bench.sample(server, "/", bare_load))
            else:
                track.append(bench.sample(server, "/analytics/track", track_load))
    return track, bare


def drain_phase(bench: Bench, client: redis.Redis) -> tuple[DrainResult, list[Profile]]:
    """Start ``footfall drain`` on the track rounds' backlog; time it; profile it and the MongoDB server."""
    pids = {"mongodb": bench.mongodb_pid, "redis": bench.redis_pid}
    window = 4 * bench.opts.seconds
    spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start() -> None:
        bench.drain.start()
        pids["drain"] = bench.drain.pid

    def start_profilers() -> None:
        if not bench.opts.profile:
            return
        for name, pid in (("drain (footfall drain)", bench.drain.pid),
                          ("MongoDB-wire server (secantusd-py)", bench.mongodb_pid)):
            path = bench.opts.out / f"profile-{pid}.txt"
            spies.append((name, path, start_py_spy(pid, window, path)))

    pids["drain"] = 0
    result = measure_drain(client, start, pids, window, cpu_seconds, on_window=start_profilers)
    profiles: list[Profile] = []
    for name, path, spy in spies:
        spy.wait(window + 30)
        summary = read_profile(path, f"{name}, during the drain window")
        if summary is not None:
            profiles.append(summary)
    return result, profiles


def lag_phase(bench: Bench, client: redis.Redis, ingest: float, drain_rate: float) -> list[LagResult]:
    """Hold 80 % of the ingest rate, then 80 % of the drain's rate, with the drain running."""
    db = mongo_database(Settings(mongodb_uri=bench.mongodb.url))
    seconds = 3 * bench.opts.seconds
    cpu_pids = {"worker": bench.wrapped.worker_pids()[0], "drain": bench.drain.pid, "mongodb": bench.mongodb_pid,
                "redis": bench.redis_pid}
    runs = [("80 % of ingest", 0.8 * ingest), ("80 % of the drain's rate", 0.8 * drain_rate)]
    results = []
    try:
        for label, rate in runs:
            if rate < 1:  # nothing was ingested or drained: there is no rate to hold
                continue
            load = bench.load(cookies=True, body=True)
            results.append(lag_run(label=label, url=bench.wrapped.url + "/analytics/track", base_url=bench.wrapped.url,
                                   load=replace(load, connections=max(16, load.connections)), rate=rate,
                                   seconds=seconds, recovery=seconds, client=client, db=db,
                                   probe_jar=bench.spare_jars[-1], cpu_pids=cpu_pids, cpu=cpu_seconds))
            clear_backlog(client)
    finally:
        db.client.close()
    return results


def page_profiles(bench: Bench) -> list[Profile]:
    """py-spy on the gunicorn worker while wrk drives it, for the bare app and footfall's two traffics."""
    profiles = []
    for label, server, cookies in (("bare app worker, same-session traffic", bench.bare, True),
                                   ("footfall worker, same-session traffic", bench.wrapped, True),
                                   ("footfall worker, new-visitor traffic", bench.wrapped, False)):
        pid = server.worker_pids()[0]
        path = bench.opts.out / f"profile-{pid}-{'same' if cookies else 'new'}.txt"
        spy = start_py_spy(pid, bench.opts.seconds, path)
        run_wrk(server.url + "/", bench.load(cookies=cookies), bench.opts.seconds + 1)
        spy.wait(bench.opts.seconds + 30)
        profile = read_profile(path, label)
        if profile is not None:
            profiles.append(profile)
    return profiles


def jars_of(bench: Bench) -> list[str]:
    """The replayed visitors' cookie jars, as written for wrk."""
    return [line for line in bench.jars.read_text().splitlines() if line]


@contextlib.contextmanager
def _servers(opts: Options) -> Iterator[Bench]:
    """Start everything; stop everything (newest first) on the way out."""
    with contextlib.ExitStack() as stack:
        redis_server = start_redis(None)
        stack.callback(redis_server.stop)
        mongodb = start_mongodb(None)
        stack.callback(mongodb.stop)
        env = benchmark_env(redis_server.url, mongodb.url, secrets.token_urlsafe(32))
        os.environ.update({k: v for k, v in env.items() if k.startswith("FOOTFALL_")})  # the in-process calls
        servers = []
        for name, app in (("bare", "benchmarks.apps:create_bare()"), ("footfall", "benchmarks.apps:create_wrapped()")):
            server = Gunicorn(app, opts.config, env, opts.out / f"gunicorn-{name}.log")
            stack.callback(server.stop)
            server.start()
            servers.append(server)
        drain = DrainProcess(env, opts.out / "drain.log")
        stack.callback(drain.stop)
        jars = create_visitors(opts.visitors + 2 * ROUND_TRIP_REQUESTS + 1)
        settings = Settings.from_env()
        drain_client, db = redis_client(settings, for_drain=True), mongo_database(settings)
        try:
            Drain(drain_client, db).drain_all()  # the visitors' visits, so their page views have sessions
        finally:
            drain_client.close()
            db.client.close()
        body = opts.out / "track.json"
        body.write_text(json.dumps(TRACK_BODY))
        yield Bench(opts, redis_server, mongodb, servers[0], servers[1], drain,
                    write_jars(jars[:opts.visitors], opts.out / "jars.txt"), jars[opts.visitors:], body)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; 0 when it ran (targets missed or not)."""
    opts = _parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", file=sys.stderr, flush=True)

    notes = [f"settings passed from the environment: {k}={v}" for k, v in sorted(passed_settings().items())]
    with _servers(opts) as bench:
        client = redis.Redis.from_url(bench.redis_server.url, socket_timeout=10)
        try:
            step("page requests, saturated")
            pages = page_rounds(bench)
            step("page requests, held rate")
            paced = paced_rounds(bench, pages)
            step("Redis round trips")
            db = mongo_database(Settings(mongodb_uri=bench.mongodb.url))
            try:
                trips = count_round_trips(bench.wrapped.url, bench.redis_server.url, db, bench.spare_jars,
                                          ROUND_TRIP_REQUESTS)
            finally:
                db.client.close()
            inprocess: Breakdown | None = None
            try:
                step("in-process cost breakdown")
                inprocess = measure_inprocess(jars_of(bench))
            except ImportError:
                notes.append("no in-process breakdown (pyinstrument not installed)")
            discarded = clear_backlog(client)
            notes.append(f"{discarded:,} queued visit starts from the page rounds were discarded before the track "
                         "rounds (no drain runs during page rounds: they measure the request path alone)")
            step("track endpoint")
            track, track_bare = track_rounds(bench)
            step("drain")
            drain, profiles = drain_phase(bench, client)
            left = clear_backlog(client)
            if left:
                notes.append(f"the drain window ended with {left:,} events still queued; they were discarded")
            step("lag with the drain running")
            lags = lag_phase(bench, client, median_rate(track), drain.rate)
            bench.drain.stop()  # the profiles below are of the request path alone
            if opts.profile:
                step("profiles")
                profiles = page_profiles(bench) + profiles
            else:
                notes.append("no profiles (py-spy not installed or --no-profile)")
        finally:
            client.close()
        layout = (f"gunicorn {opts.config.describe()} for both apps; wrk 1 thread, {opts.connections} connections "
                  f"(16 in the held-rate track runs); Redis, the MongoDB-wire server and the drain run beside them "
                  f"on the same {os.cpu_count()} cores")
        report = Report(command, layout, opts.rounds, opts.seconds, pages, paced, trips, track,
                        track_bare, drain, lags, profiles, inprocess, notes)
    text = report.markdown()
    print(text)
    if opts.report is not None:
        opts.report.write_text(text)
    step(f"done; logs and raw profiles in {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
