"""Dashboard query latency against data size: ``.venv/bin/python -m benchmarks.queries``.

For each size (page views in one 30-day window, default 10k, 100k and 1M) a fresh in-memory
MongoDB-wire server (:func:`footfall.embedded.start_mongodb`) is loaded with copies of the
semicomplete log (:mod:`benchmarks.query_data`), then each dashboard query (:data:`CASES`) runs over
the whole window, June 2015, in UTC and in Europe/Berlin: once to warm up, then ``--repeat`` times
(fewer when one run takes more than ``--budget`` / ``--repeat`` seconds: the count is printed). The
figure is the median wall time of the public function (``summarize``, ``timeseries``,
``breakdown``: one aggregation round trip plus its Python post-processing). The queries served from
``rollups_hourly`` run again with ``rollups=False``, and each pair of answers must agree.

The report (markdown, stdout) gives the load of each size, the latency table with growth ratios
beside the data-size ratio, rollups on against off, and the index each pipeline's first ``$match``
uses (``explain``). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pymongo
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from benchmarks.query_data import SITE, load, read_seed, window_of
from benchmarks.query_report import Measurement, Plan, SizeResult, markdown
from footfall.dashboard_queries import (
    Period,
    Query,
    breakdown,
    breakdown_query,
    buckets,
    summarize,
    summary_query,
    timeseries,
    timeseries_query,
)
from footfall.dashboard_queries.filters import parse_filters
from footfall.embedded import start_mongodb
from footfall.errors import StoreUnavailable
from footfall.stores.documents import PAGE_VIEWS

__all__ = ["CASES", "Case", "main", "measure_size"]

FIRST, LAST = date(2015, 6, 1), date(2015, 6, 30)  # 30 days; the data sits inside both zones' June
ZONES = ("UTC", "Europe/Berlin")
FILTER = "device==mobile"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class Case:
    """One dashboard query.

    :ivar name: as the table shows it.
    :ivar call: ``(db, period, rollups) -> answer`` through the public function.
    :ivar query: ``(period, rollups) -> Query``, the same aggregation, for ``explain``.
    :ivar rollups: whether the unfiltered query reads ``rollups_hourly`` (then it also runs with
        ``rollups=False``).
    """

    name: str
    call: Callable[[Database, Period, bool], Any]
    query: Callable[[Period, bool], Query]
    rollups: bool


def _previous(period: Period) -> tuple[datetime, datetime]:
    before = period.previous()
    return before.start, before.end


def _summary(filters: str | None) -> tuple[Callable[..., Any], Callable[..., Query]]:
    clauses = parse_filters(filters)
    return (lambda db, p, r: summarize(db, p.start, p.end, SITE, filters=clauses, previous=_previous(p), rollups=r),
            lambda p, r: summary_query(p.start, p.end, SITE, clauses, _previous(p), r))


def _timeseries(metric: str) -> tuple[Callable[..., Any], Callable[..., Query]]:
    return (lambda db, p, r: timeseries(db, p, metric, "day", SITE, rollups=r),
            lambda p, r: timeseries_query(buckets(p, "day"), metric, SITE, (), r))


def _breakdown(dimension: str) -> tuple[Callable[..., Any], Callable[..., Query]]:
    return (lambda db, p, r: breakdown(db, p.start, p.end, dimension, SITE, limit=10),
            lambda p, r: breakdown_query(p.start, p.end, dimension, SITE, (), 10))


CASES: tuple[Case, ...] = (
    Case("summary + previous period", *_summary(None), rollups=True),
    Case("timeseries visits / day", *_timeseries("visits"), rollups=True),
    Case("timeseries page_views / day", *_timeseries("page_views"), rollups=True),
    Case("timeseries unique_visitors / day", *_timeseries("unique_visitors"), rollups=False),
    Case("breakdown page, top 10", *_breakdown("page"), rollups=False),
    Case("breakdown referrer, top 10", *_breakdown("referrer"), rollups=False),
    Case(f"summary + previous, {FILTER}", *_summary(FILTER), rollups=False),
)


@dataclass(frozen=True)
class Limits:
    """How long to measure.

    :ivar repeat: measured runs after the warm-up; :ivar budget: seconds of measured runs one query
        may take at one size (at least one run); :ivar timeout: seconds after which one run is
        abandoned (reported as timed out, and not tried at larger sizes).
    """

    repeat: int
    budget: float
    timeout: float


class Store:
    """The size's MongoDB-wire server (on a data dir, so it can be restarted) and a client to it."""

    def __init__(self, data_dir: Path) -> None:
        self.server = start_mongodb(data_dir)
        self.client: MongoClient = MongoClient(self.server.url)
        self.restarts = 0

    @property
    def db(self) -> Database:
        """The benchmark's database."""
        return self.client["footfall"]

    def restart(self) -> None:
        """Stop the server (ending an aggregation a timed-out client left running) and start it on
        the same data."""
        self.client.close()
        self.server.restart()
        self.client = MongoClient(self.server.url)
        self.restarts += 1

    def close(self) -> None:
        """Stop the client and the server."""
        self.client.close()
        self.server.stop()


def _call(case: Case, period: Period, rollups: bool, db: Database) -> Any:
    return case.call(db, period, rollups)


class TimedOut(Exception):
    """A run took longer than the timeout (the client gave up; the server was restarted)."""


def _time(store: Store, call: Callable[[Database], Any], timeout: float) -> tuple[float, Any]:
    started = time.perf_counter()
    try:
        with pymongo.timeout(timeout):
            answer = call(store.db)
    except StoreUnavailable as exc:
        if not isinstance(exc.__cause__, PyMongoError) or not exc.__cause__.timeout:
            raise
        store.restart()  # SecantusDB ignores maxTimeMS: the abandoned aggregation would keep running
        raise TimedOut from exc
    return time.perf_counter() - started, answer


def _timed(store: Store, call: Callable[[Database], Any], limits: Limits) -> tuple[list[float], float, Any]:
    """Warm up once, then up to ``limits.repeat`` runs (fewer when they would pass the budget).

    :raises TimedOut: the warm-up passed ``limits.timeout``.
    """
    warm, answer = _time(store, call, limits.timeout)
    runs = max(1, min(limits.repeat, int(limits.budget // max(warm, 1e-9))))
    return [_time(store, call, limits.timeout)[0] for _ in range(runs)], warm, answer


def _plans(db: Database, query: Query) -> list[Plan]:
    """The index each (sub-)pipeline's leading ``$match`` stages use: ``explain`` (queryPlanner, no
    execution) of an aggregation made of those stages alone."""
    found = []
    pipelines = [(query.collection, query.pipeline)] + [
        (stage["$unionWith"]["coll"], stage["$unionWith"]["pipeline"])
        for stage in query.pipeline if "$unionWith" in stage]
    for collection, pipeline in pipelines:
        matches = []
        for stage in pipeline:
            if "$match" not in stage:
                break
            matches.append(stage)
        explained = db.command("aggregate", collection, pipeline=matches, explain=True)
        planner = explained.get("queryPlanner") or explained["stages"][0]["$cursor"]["queryPlanner"]
        stage = planner["winningPlan"]
        while "inputStage" in stage and stage.get("stage") != "IXSCAN":
            stage = stage["inputStage"]
        found.append(Plan(collection, stage.get("indexName") if stage.get("stage") == "IXSCAN" else stage.get("stage")))
    return found


def measure_size(store: Store, periods: list[Period], limits: Limits, gave_up: set[str],
                 progress: Callable[[str], None]) -> tuple[list[Measurement], list[str]]:
    """Run every case in every period (and the rollup cases without rollups) on a loaded store.

    :param gave_up: keys (case, rollups) that timed out before: not run again, updated here.
    :return: the measurements, and notes (a rollup answer that differs from the raw one).
    """
    results: list[Measurement] = []
    notes = []
    for case in CASES:
        for period in periods:
            for rollups in (True, False) if case.rollups else (True,):
                zone, key = period.tz.key, f"{case.name}|{rollups}"
                label = f"{case.name}, {zone}{'' if rollups else ', rollups off'}"
                plans = _plans(store.db, case.query(period, rollups))
                if key in gave_up:
                    progress(f"  {label}: not run (timed out before)")
                    results.append(Measurement(case.name, zone, rollups, [], None, plans, None, skipped=True))
                    continue
                progress(f"  {label}")
                try:
                    times, warm, answer = _timed(store, functools.partial(_call, case, period, rollups), limits)
                except TimedOut:
                    progress(f"  {label}: timed out after {limits.timeout:,.0f} s; server restarted")
                    gave_up.add(key)
                    results.append(Measurement(case.name, zone, rollups, [], None, plans, None,
                                               timed_out=limits.timeout))
                    continue
                results.append(Measurement(case.name, zone, rollups, times, warm, plans, answer))
                served = next((m for m in results if (m.case, m.zone, m.rollups) == (case.name, zone, True)), None)
                if not rollups and served is not None and served.times and served.answer != answer:
                    notes.append(f"{case.name} ({zone}): the rollup answer differs from the raw one")
    return results, notes


def _run_size(size: int, periods: list[Period], limits: Limits, gave_up: set[str],
              progress: Callable[[str], None]) -> SizeResult:
    data_dir = Path(tempfile.mkdtemp(prefix="footfall-bench-queries-"))
    try:
        store = Store(data_dir)
        try:
            seed = read_seed(store.client["footfall_seed"])
            progress(f"{size:,} page views: loading")
            loaded = load(store.db, seed, size, window_of([(p.start, p.end) for p in periods]),
                          progress=lambda text: progress("  " + text))
            progress(f"{size:,} page views: loaded {loaded.page_views:,} in {loaded.seconds:.0f} s; querying")
            started = time.perf_counter()
            measurements, notes = measure_size(store, periods, limits, gave_up, progress)
            if store.restarts:
                kept = store.db[PAGE_VIEWS].count_documents({})
                notes.append(f"the server was restarted {store.restarts}× after timeouts; it held {kept:,} page "
                             f"views afterwards ({'all' if kept == loaded.page_views else 'NOT all'} of them)")
            return SizeResult(size, loaded, measurements, notes, time.perf_counter() - started)
        finally:
            store.close()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queries", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="page views in the window, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per query after a warm-up (default 5)")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds of measured runs per query and size: fewer runs beyond it, at least one "
                             "(default 300)")
    parser.add_argument("--timeout", type=float, default=1200.0,
                        help="seconds after which one run is abandoned and reported as timed out (default 1200)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(text.replace("_", "")) for text in args.sizes.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--sizes must be integers separated by commas, got {args.sizes!r}")
    if not args.sizes or any(not 1 <= s <= 10_000_000 for s in args.sizes):
        parser.error("--sizes must name 1..10000000 page views each")
    if not 1 <= args.repeat <= 100 or args.budget <= 0 or args.timeout <= 0:
        parser.error("--repeat must be 1..100, --budget and --timeout positive")
    return args


def measure(sizes: list[int], limits: Limits, progress: Callable[[str], None]) -> list[SizeResult]:
    """Load and measure each size in turn (a server per size, stopped before the next)."""
    periods = [Period(FIRST, LAST, ZoneInfo(zone)) for zone in ZONES]
    gave_up: set[str] = set()
    return [_run_size(size, periods, limits, gave_up, progress) for size in sorted(sizes)]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the markdown report; 0 when it ran."""
    args = _parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.queries", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", file=sys.stderr, flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        limits = Limits(args.repeat, args.budget, args.timeout)
        results = measure(args.sizes, limits, progress)
        print(markdown(command, results, limits, FILTER, f"{FIRST}..{LAST}"))
        progress("done")
        return 0
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
