"""The benchmark: ``.venv/bin/python -m benchmarks.run`` (about 7 minutes with the defaults).

One run, on 127.0.0.1 only, with throwaway stores (``--only PART`` runs some parts, see :data:`PARTS`):

1. starts Redis and the MongoDB-wire server (:mod:`footfall.embedded`, no data dir), and two pairs of
   servers, each pair with one configuration for both apps: the bare Flask app and the same app
   wrapped by footfall under gunicorn, the bare Starlette app and the same app wrapped by
   ``FootfallASGIMiddleware`` under uvicorn (:mod:`benchmarks.apps`);
2. pre-creates ``--visitors`` visitors (their cookie jars) per pair, each through its wrapped app,
   and writes the WSGI visitors' visits to MongoDB;
3. ``wsgi``, ``asgi``: page requests, saturated, alternating bare/footfall, for same-session traffic
   (the jars replayed) and new-visitor traffic (no cookies); then the same at a held rate for the
   added p99; ``wsgi`` also times footfall in-process;
4. ``round-trips``: counts Redis round trips per request kind (MONITOR);
5. ``drain``: ``POST /analytics/track`` rounds (no drain running), alternating with the bare app;
   then starts ``footfall drain`` on that backlog for its sustained rate; then holds 80 % of the
   ingest rate, and 80 % of the drain's rate, with the drain running, sampling backlog and lag;
6. profiles the footfall workers (both pairs) and the drain with py-spy, and the wrapped WSGI app
   in-process with pyinstrument, when they are installed.

It prints a markdown report (and writes it with ``--report FILE``); every process it started is
stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from benchmarks import phases
from benchmarks.bench import PARTS, ROUND_TRIP_REQUESTS, Bench, Options, Pair, start
from benchmarks.drain_load import clear_backlog
from benchmarks.inprocess import measure_inprocess
from benchmarks.inprocess_asgi import measure_inprocess_asgi
from benchmarks.profiling import find_py_spy
from benchmarks.report import PageResults, Report, median_rate
from benchmarks.round_trips import count_round_trips
from benchmarks.servers import GunicornConfig, UvicornConfig, passed_settings
from footfall.settings import Settings
from footfall.stores.connect import mongo_database

__all__ = ["main"]


def _parse(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured wrk run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per comparison (default 3)")
    parser.add_argument("--visitors", type=int, default=1000, help="pre-created visitors replayed (default 1000)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn and uvicorn workers, every app (default 1)")
    parser.add_argument("--threads", type=int, default=4, help="gthread threads per gunicorn worker (default 4)")
    parser.add_argument("--only", action="append", choices=PARTS, metavar="PART",
                        help=f"run only this part; repeat for several ({', '.join(PARTS)}; default: all)")
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
                   GunicornConfig(workers=args.workers, threads=args.threads), UvicornConfig(workers=args.workers),
                   profile=not args.no_profile and find_py_spy() is not None,
                   parts=frozenset(args.only or PARTS), report=args.report, out=out)


def _pages(bench: Bench, pair: Pair, step: Callable[[str], None]) -> PageResults:
    step(f"{pair.name} page requests, saturated")
    saturated = phases.page_rounds(bench, pair)
    step(f"{pair.name} page requests, held rate")
    return PageResults(pair.name, pair.label, saturated, phases.paced_rounds(bench, pair, saturated))


def _round_trips(bench: Bench, pair: Pair, report: Report) -> None:
    db = mongo_database(Settings(mongodb_uri=bench.mongodb.url))
    try:
        report.round_trips = count_round_trips(pair.wrapped.url, bench.redis_server.url, db, bench.spare_jars,
                                               ROUND_TRIP_REQUESTS)
    finally:
        db.client.close()


def _drain(bench: Bench, pair: Pair, client: redis.Redis, report: Report, step: Callable[[str], None]) -> None:
    discarded = clear_backlog(client)
    report.notes.append(f"{discarded:,} queued visit starts from the page rounds were discarded before the track "
                        "rounds (no drain runs during page rounds: they measure the request path alone)")
    step("track endpoint")
    report.track, report.track_bare = phases.track_rounds(bench, pair)
    step("drain")
    report.drain, profiles = phases.drain_phase(bench, client)
    report.profiles += profiles
    left = clear_backlog(client)
    if left:
        report.notes.append(f"the drain window ended with {left:,} events still queued; they were discarded")
    step("lag with the drain running")
    report.lags = phases.lag_phase(bench, pair, client, median_rate(report.track), report.drain.rate,
                                   bench.spare_jars[-1])
    bench.drain.stop()  # the profiles after this are of the request path alone


def _inprocess(bench: Bench, report: Report, step: Callable[[str], None]) -> None:
    """The in-process breakdowns of the page-request pairs that ran."""
    measures = []
    if bench.wsgi is not None and "wsgi" in bench.opts.parts:
        measures.append((bench.wsgi, measure_inprocess))
    if bench.asgi is not None:
        measures.append((bench.asgi, measure_inprocess_asgi))
    for pair, measure_pair in measures:
        step(f"{pair.name} in-process cost breakdown")
        try:
            report.inprocess.append(measure_pair([line for line in pair.jars.read_text().splitlines() if line]))
        except ImportError:
            report.notes.append("no in-process breakdown (pyinstrument not installed)")
            return


def _layout(opts: Options) -> list[str]:
    lines = []
    if opts.parts - {"asgi"}:
        lines.append(f"WSGI: Flask under gunicorn, {opts.gunicorn.describe()}, for both apps")
    if "asgi" in opts.parts:
        lines.append(f"ASGI: Starlette under uvicorn, {opts.uvicorn.describe()}, for both apps")
    return [*lines, f"wrk 1 thread, {opts.connections} connections (16 in the held-rate track runs); Redis, the "
            f"MongoDB-wire server and the drain run beside them on the same {os.cpu_count()} cores"]


def measure(opts: Options, report: Report, step: Callable[[str], None]) -> None:
    """Start what ``opts.parts`` need, run those parts, and fill ``report`` in."""
    with start(opts) as bench:
        client = redis.Redis.from_url(bench.redis_server.url, socket_timeout=10)
        try:
            if bench.wsgi is not None and "wsgi" in opts.parts:
                report.pages.append(_pages(bench, bench.wsgi, step))
            if bench.asgi is not None:
                report.pages.append(_pages(bench, bench.asgi, step))
            if bench.wsgi is not None and "round-trips" in opts.parts:
                step("Redis round trips")
                _round_trips(bench, bench.wsgi, report)
            _inprocess(bench, report, step)
            if bench.wsgi is not None and "drain" in opts.parts:
                _drain(bench, bench.wsgi, client, report, step)
            if opts.profile:
                step("profiles")
                drain_profiles, report.profiles = report.profiles, []
                if bench.wsgi is not None and "wsgi" in opts.parts:
                    report.profiles += phases.page_profiles(bench, bench.wsgi, [("bare", True), ("footfall", True),
                                                                                ("footfall", False)])
                if bench.asgi is not None:  # blocking: an asyncio worker's stacks come out torn without it
                    report.profiles += phases.page_profiles(bench, bench.asgi, [("bare", True), ("footfall", True)],
                                                            nonblocking=False)
                report.profiles += drain_profiles
            else:
                report.notes.append("no profiles (py-spy not installed or --no-profile)")
        finally:
            client.close()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report; 0 when it ran (targets missed or not)."""
    opts = _parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()

    def step(text: str) -> None:
        print(f"[{time.monotonic() - started:5.0f} s] {text}", file=sys.stderr, flush=True)

    notes = [f"settings passed from the environment: {k}={v}" for k, v in sorted(passed_settings().items())]
    report = Report(command, _layout(opts), opts.rounds, opts.seconds, notes)
    measure(opts, report, step)
    text = report.markdown()
    print(text)
    if opts.report is not None:
        opts.report.write_text(text)
    step(f"done; logs and raw profiles in {opts.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
