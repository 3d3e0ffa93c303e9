"""Dashboard query latency against data size (issue 11): ``.venv/bin/python -m benchmarks.queries``.

For each size (page views in one 30-day window, June 2015; default 10k, 100k and 1M) a fresh
MongoDB-wire server (:func:`footfall.embedded.start_mongodb`, SecantusDB in its own process) is loaded
with copies of the semicomplete log (:mod:`benchmarks.query_data`: inserts, then indexes), the
rollups are built (:func:`footfall.stores.rollup_build.ensure_built`, timed on its own), then every
case of issue 11's table runs through the public function (``summarize``, ``timeseries``,
``breakdown``) with rollups on: once to warm up, then ``--repeat`` times (fewer when they would pass
``--budget`` seconds). Each row is printed as soon as it is measured: median and min wall time, the
growth against the 10k size, the goal, whether it is met, and the answer's ``source`` (must be
``rollups``). Up to ``--exact-max`` page views (default 100k) every case also runs once with
``rollups=False`` and the two answers must be equal (minus ``source``); a difference prints a loud
``!!! NOT EXACT`` line.

At the largest size the dashboard page itself is timed in Chromium (:mod:`benchmarks.dashboard_page`;
``--no-page`` skips it). ``--year`` measures instead the year summary at 10M page views in a 365-day
window (2015; ``--year-size`` to change the size). (The ``--dirty-hint`` experiment of the first
1M run is gone: footfall's read of the rollup marks now uses its partial index itself.)

The report is markdown on stdout; progress (load, build) goes to stderr.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pymongo import MongoClient
from pymongo.database import Database

from benchmarks.query_data import SITE, Seed, build_rollups, load, read_seed, window_of
from benchmarks.query_report import HEADER, Measurement, machine, row, strip_source, summary_table
from footfall.dashboard_queries import Period, breakdown, summarize, timeseries
from footfall.dashboard_queries.filters import format_filters, parse_filters
from footfall.embedded import ServerProcess, start_mongodb

__all__ = ["Case", "cases", "year_cases", "GROUPS", "measure_size", "main"]

FIRST, LAST = date(2015, 6, 1), date(2015, 6, 30)  # 30 days; the data sits inside both zones' June
YEAR_FIRST, YEAR_LAST = date(2015, 1, 1), date(2015, 12, 31)
ZONES = ("UTC", "Europe/Berlin")
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
YEAR_SIZE = 10_000_000
METRICS = ("visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration")
DIMENSIONS = ("page", "entry_page", "exit_page", "route", "referrer", "source", "utm_source", "utm_medium",
              "utm_campaign", "country", "device", "browser", "os", "event")


@dataclass(frozen=True)
class Case:
    """One dashboard query of issue 11's table.

    :ivar name: as the rows show it. :ivar group: the table line it belongs to.
    :ivar call: ``(db, rollups) -> answer`` through the public function.
    :ivar goal_ms: latency goal (ms); :ivar growth_goal: allowed growth from 10k (``None``: none).
    """

    name: str
    group: str
    call: Callable[[Database, bool], Any]
    goal_ms: float
    growth_goal: float | None


#: the table's lines: (title, goal ms, growth goal)
GROUP_GOALS: dict[str, tuple[float, float | None]] = {
    "summary with comparison, UTC and Europe/Berlin": (500, 2),
    "timeseries of each metric, by hour and by day": (300, 2),
    "each breakdown's top 10": (300, 2),
    "summary filtered by one dimension value": (1000, 3),
    "year summary at 10M page views": (2000, None),
}
GROUPS = list(GROUP_GOALS)


def _period(first: date, last: date, zone: str) -> Period:
    return Period(first, last, ZoneInfo(zone))


def _summary(period: Period, filters: str | None = None) -> Callable[[Database, bool], Any]:
    clauses = parse_filters(filters)
    before = period.previous()
    return lambda db, rollups: summarize(db, period.start, period.end, SITE, filters=clauses,
                                         previous=(before.start, before.end), rollups=rollups)


def filter_values(seed: Seed) -> tuple[str, str | None]:
    """The filtered summaries' values taken from the data: the most viewed page, and ``DE`` when
    some visit has it, else the most common country (``(none)`` when the data has none, as the
    semicomplete log, which carries no GeoIP country)."""
    page = collections.Counter(v.get("path") for v in seed.page_views).most_common(1)[0][0]
    countries = collections.Counter(s.get("country") for s in seed.sessions)
    country = "DE" if countries.get("DE") else countries.most_common(1)[0][0]
    return page, country


def cases(page: str, country: str | None) -> list[Case]:
    """Every case of the 30-day table (June 2015).

    :param page: a real page of the data (for ``page==``); :param country: a country (``None``: no value).
    """
    utc = _period(FIRST, LAST, "UTC")
    found = [Case(f"summary + previous period, {zone}", GROUPS[0], _summary(_period(FIRST, LAST, zone)),
                  *GROUP_GOALS[GROUPS[0]]) for zone in ZONES]
    for interval in ("hour", "day"):
        for metric in METRICS:
            found.append(Case(f"timeseries {metric} / {interval}", GROUPS[1],
                              lambda db, r, m=metric, i=interval: timeseries(db, utc, m, i, SITE, rollups=r),
                              *GROUP_GOALS[GROUPS[1]]))
    for dimension in DIMENSIONS:
        found.append(Case(f"breakdown {dimension}, top 10", GROUPS[2],
                          lambda db, r, d=dimension: breakdown(db, utc.start, utc.end, d, SITE, limit=10, rollups=r),
                          *GROUP_GOALS[GROUPS[2]]))
    country_filter = format_filters(parse_filters(f"country=={'(none)' if country is None else country}"))
    for expression in ("device==mobile", format_filters(parse_filters(f"page=={page}")), country_filter):
        found.append(Case(f"summary + previous, {expression}", GROUPS[3], _summary(utc, expression),
                          *GROUP_GOALS[GROUPS[3]]))
    return found


def year_cases() -> list[Case]:
    """The year summary (2015, with the previous year as comparison), UTC."""
    return [Case("year summary + previous year, UTC", GROUPS[4], _summary(_period(YEAR_FIRST, YEAR_LAST, "UTC")),
                 *GROUP_GOALS[GROUPS[4]])]


def _timed(call: Callable[[], Any], repeat: int, budget: float) -> tuple[list[float], Any]:
    """A warm-up, then up to ``repeat`` runs (fewer when they would pass ``budget`` seconds)."""
    started = time.perf_counter()
    answer = call()
    warm = time.perf_counter() - started
    times = []
    for _ in range(max(1, min(repeat, int(budget // max(warm, 1e-9))))):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times, answer


def measure_size(db: Database, size: int, chosen: list[Case], baseline: dict[str, float], repeat: int,
                 budget: float, exact: bool, out: Callable[[str], None]) -> list[Measurement]:
    """Run every case on a loaded, built store and print each row as soon as it is measured.

    :param baseline: case name → median seconds at 10k (filled here when ``size`` is 10k).
    :param exact: also run each case with ``rollups=False`` and compare the answers.
    :return: the measurements.
    """
    results = []
    for case in chosen:
        times, answer = _timed(lambda c=case: c.call(db, True), repeat, budget)
        source = answer.get("source", "?") if isinstance(answer, dict) else "?"
        raw_seconds, same = None, None
        if exact:
            started = time.perf_counter()
            raw = case.call(db, False)
            raw_seconds = time.perf_counter() - started
            same = strip_source(raw) == strip_source(answer)
        median = statistics.median(times)
        if size == 10_000:
            baseline[case.name] = median
        growth = median / baseline[case.name] if case.name in baseline and size != 10_000 else None
        m = Measurement(size, case.name, case.group, times, source, case.goal_ms, case.growth_goal, growth,
                        raw_seconds, same)
        results.append(m)
        out(row(m))
        if same is False:
            out(f"\n!!! NOT EXACT at {size:,}: {case.name}: rollups {strip_source(answer)!r:.600}\n"
                f"!!!                      raw     {strip_source(raw)!r:.600}\n")
        if source != "rollups":
            out(f"\n!!! {case.name} at {size:,} answered from {source!r}, not from the rollups\n")
    return results


@contextlib.contextmanager
def _store() -> Any:
    data_dir = Path(tempfile.mkdtemp(prefix="footfall-bench-queries-"))
    server: ServerProcess | None = None
    try:
        server = start_mongodb(data_dir)
        client: MongoClient = MongoClient(server.url)
        try:
            yield server, client
        finally:
            client.close()
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queries", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES),
                        help="page views in the 30-day window, comma-separated (default 10000,100000,1000000)")
    parser.add_argument("--year", action="store_true",
                        help="instead: the year summary in a 365-day window (--year-size page views, default 10M)")
    parser.add_argument("--year-size", type=int, default=YEAR_SIZE, help="page views of --year (default 10000000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per case after a warm-up (default 5)")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds of measured runs per case and size: fewer runs beyond it (default 30)")
    parser.add_argument("--exact-max", type=int, default=100_000,
                        help="compare with rollups=False up to this size (default 100000; raw runs at 1M take "
                             "minutes)")
    parser.add_argument("--page-runs", type=int, default=5, help="dashboard page loads in Chromium (default 5)")
    parser.add_argument("--no-page", action="store_true", help="do not time the dashboard page in Chromium")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(text.replace("_", "")) for text in args.sizes.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--sizes must be integers separated by commas, got {args.sizes!r}")
    if args.year:
        args.sizes = [args.year_size]
    if not args.sizes or any(not 1 <= s <= 20_000_000 for s in args.sizes):
        parser.error("--sizes must name 1..20000000 page views each")
    if not 1 <= args.repeat <= 100 or args.budget <= 0:
        parser.error("--repeat must be 1..100, --budget positive")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, printing rows as they are measured; 0 when it ran."""
    args = _parse(argv)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.queries", *(sys.argv[1:] if argv is None else argv)])
    started = time.monotonic()

    def out(text: str) -> None:
        print(text, flush=True)

    def progress(text: str) -> None:
        print(f"[{time.monotonic() - started:6.0f} s] {text}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # kill: stop the servers as Ctrl-C does
    with contextlib.suppress(KeyboardInterrupt):
        out(f"# Dashboard queries (issue 11)\n\n`{command}`\n\nMachine at start: {machine()}\n")
        first, last = (YEAR_FIRST, YEAR_LAST) if args.year else (FIRST, LAST)
        zones = ("UTC",) if args.year else ZONES
        window = window_of([(p.start, p.end) for p in (_period(first, last, z) for z in zones)])
        baseline: dict[str, float] = {}
        results: list[Measurement] = []
        for size in sorted(args.sizes):
            with _store() as (server, client):
                db = client["footfall"]  # naive datetimes, as the seed and the window are
                reader: MongoClient = MongoClient(server.url, tz_aware=True)  # as the app reads (stores.connect)
                queried = reader["footfall"]
                seed = read_seed(client["footfall_seed"])
                progress(f"{size:,} page views: loading")
                loaded = load(db, seed, size, window, progress=lambda text: progress("  " + text))
                hours, build_seconds = build_rollups(db, SITE, progress=lambda text: progress("  " + text))
                rollup_docs = db["rollups"].estimated_document_count()
                out(f"\n## {size:,} page views ({first}..{last})\n\nLoad: {loaded.page_views:,} page views, "
                    f"{loaded.sessions:,} visits, {loaded.visitors:,} visitors ({loaded.copies} copies): inserts "
                    f"{loaded.insert_seconds:.1f} s, indexes {loaded.index_seconds:.1f} s; rollup build "
                    f"(`ensure_built`) {build_seconds:.1f} s for {hours:,} hours, {rollup_docs:,} rollup documents. "
                    f"Load average now {machine().split('load average (1/5/15 min) ')[1].split(',')[0]}.\n")
                chosen = year_cases() if args.year else cases(*filter_values(seed))
                out(HEADER)
                results += measure_size(queried, size, chosen, baseline, args.repeat, args.budget,
                                        size <= args.exact_max, out)
                if size == max(args.sizes) and not args.no_page and not args.year:
                    from benchmarks.dashboard_page import measure_page  # Playwright only when needed
                    progress("dashboard page in Chromium")
                    try:
                        page = measure_page(server.url, SITE, FIRST, LAST, args.page_runs)
                        out(f"\nDashboard page ({FIRST}..{LAST}, UTC), navigation until `body[data-state=ready]` "
                            f"(every card and tile filled), {len(page)} loads after a warm-up: median "
                            f"{statistics.median(page) * 1000:,.0f} ms, min {min(page) * 1000:,.0f} ms "
                            f"(goal ≤ 2,000 ms: {'met' if statistics.median(page) <= 2 else '**missed**'}).")
                    except Exception as exc:  # noqa: BLE001 - the query figures stand without the page
                        out(f"\nDashboard page: not measured ({type(exc).__name__}: {exc})")
                reader.close()
        groups = {title: goals for title, goals in GROUP_GOALS.items() if any(m.group == title for m in results)}
        out("\n## Summary\n\n" + summary_table(results, groups, sorted(args.sizes)))
        out(f"\nMachine at end: {machine()}; {time.monotonic() - started:.0f} s in all.")
        progress("done")
        return 0
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
