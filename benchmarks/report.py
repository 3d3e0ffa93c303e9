"""The benchmark's report: markdown tables of one run, with each target met or missed by how much."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks.drain_load import LAG_TARGET, DrainResult, LagResult
from benchmarks.inprocess import Breakdown
from benchmarks.profiling import Profile
from benchmarks.round_trips import RoundTrips
from benchmarks.wrk import WrkResult, pooled_percentile

__all__ = ["Sample", "Rounds", "PageResults", "Report", "TARGETS", "machine", "median_rate"]

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"same-session": 0.85, "new-visitor": 0.75}  # × the bare app's throughput
ADDED_P99_TARGET_MS = 1.0


@dataclass(frozen=True)
class Sample:
    """One wrk run against one app, with the app's CPU use per request.

    :ivar worker_us: CPU µs of the gunicorn workers per completed request.
    :ivar redis_us: CPU µs of the Redis server per completed request.
    """

    wrk: WrkResult
    worker_us: float
    redis_us: float


def median_rate(samples: list[Sample]) -> float:
    """Median requests/s of the samples."""
    return statistics.median(sample.wrk.rate for sample in samples)


def _pooled(samples: list[Sample], percent: float) -> float:
    return pooled_percentile([sample.wrk for sample in samples], percent)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr).strip() else "?"


def machine() -> str:
    """Cores, CPU model, kernel and the versions of everything measured."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    except OSError:
        pass
    return (f"{os.cpu_count()} cores (`nproc`), {model}; Linux {platform.release()}; "
            f"Python {platform.python_version()}; "
            f"Flask {_version('flask')}, Werkzeug {_version('werkzeug')}, gunicorn {_version('gunicorn')}, "
            f"Starlette {_version('starlette')}, uvicorn {_version('uvicorn')}, uvloop {_version('uvloop')}, "
            f"httptools {_version('httptools')}; "
            f"redis-py {_version('redis')} + hiredis {_version('hiredis')}, pymongo {_version('pymongo')}; "
            f"{_first_line(['redis-server', '--version'])}; SecantusDB {_version('secantusdb')} (secantusd-py); "
            f"{_first_line(['wrk', '--version'])}")


def code_version() -> str:
    """The commit measured, and whether ``footfall/`` had uncommitted changes."""
    head = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "footfall"], capture_output=True,
                           text=True, timeout=10, check=False).stdout.strip()
    return f"footfall at {head}" + (" plus uncommitted changes to footfall/" if dirty else "")


def _verdict(met: bool, text: str) -> str:
    return f"{'met' if met else '**missed**'}: {text}"


Rounds = dict[tuple[str, str], list[Sample]]  # (traffic, "bare" | "footfall") → one sample per round


@dataclass(frozen=True)
class PageResults:
    """One app pair's page rounds.

    :ivar name: ``WSGI`` or ``ASGI``.
    :ivar label: the apps and their server, e.g. ``Starlette under uvicorn (1 worker, ...)``.
    :ivar saturated: wrk as fast as the app answers.
    :ivar paced: at a held rate, about half of footfall's saturated throughput.
    """

    name: str
    label: str
    saturated: Rounds
    paced: Rounds

    def ratio(self, traffic: str) -> float:
        """footfall's median saturated throughput over the bare app's."""
        return median_rate(self.saturated[(traffic, "footfall")]) / median_rate(self.saturated[(traffic, "bare")])

    def added_ms(self, traffic: str, percent: float) -> float:
        """footfall's pooled held-rate percentile minus the bare app's, in ms."""
        return (_pooled(self.paced[(traffic, "footfall")], percent)
                - _pooled(self.paced[(traffic, "bare")], percent))


@dataclass
class Report:
    """Everything one run measured (parts not run stay empty); :meth:`markdown` renders it."""

    command: str
    layout: list[str]
    rounds: int
    seconds: float
    notes: list[str]
    pages: list[PageResults] = field(default_factory=list)
    round_trips: list[RoundTrips] = field(default_factory=list)
    track: list[Sample] = field(default_factory=list)
    track_bare: list[Sample] = field(default_factory=list)
    drain: DrainResult | None = None
    lags: list[LagResult] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    inprocess: list[Breakdown] = field(default_factory=list)

    def markdown(self) -> str:
        """The whole report."""
        parts = [
            f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{self.command}`",
            "",
            f"- machine: {machine()}",
            f"- code: {code_version()}",
            *[f"- {line}" for line in self.layout],
            f"- {self.rounds} rounds × {self.seconds:g} s per mode, bare and footfall alternating (the order flips "
            "every round); figures are medians over the rounds, ratios are footfall's median over the bare "
            "app's median from the same run",
            *[f"- {note}" for note in self.notes],
        ]
        if self.pages:
            parts += ["", self._summary()]
        for pages in self.pages:
            parts += ["", self._pages(pages), "", self._latency(pages)]
        if self.round_trips:
            parts += ["", self._round_trips()]
        if self.track:
            parts += ["", self._track()]
        if self.lags:
            parts += ["", self._lag()]
        for breakdown in self.inprocess:
            parts += ["", breakdown.markdown()]
        for profile in self.profiles:
            parts += ["", profile.table()]
        return "\n".join(parts) + "\n"

    def _summary(self) -> str:
        lines = ["### Page requests: footfall against the bare app", "",
                 "| apps | traffic | × bare throughput | target | added p50 / p99 at a held rate "
                 f"| p99 target (≤ {ADDED_P99_TARGET_MS:g} ms) |",
                 "|---|---|---:|---|---|---|"]
        for pages in self.pages:
            for traffic, target in TARGETS.items():
                ratio, p99 = pages.ratio(traffic), pages.added_ms(traffic, 99)
                lines.append(f"| {pages.name} | {traffic} | {ratio:.2f}× "
                             f"| {_verdict(ratio >= target, f'≥ {target:.2f}× ({ratio - target:+.2f}×)')} "
                             f"| {pages.added_ms(traffic, 50):+.2f} / {p99:+.2f} ms "
                             f"| {_verdict(p99 <= ADDED_P99_TARGET_MS, f'{p99 - ADDED_P99_TARGET_MS:+.2f} ms')} |")
        return "\n".join(lines)

    @staticmethod
    def _pages(pages: PageResults) -> str:
        lines = [f"### {pages.name} page requests, saturated (wrk as fast as the app answers): {pages.label}", "",
                 "| traffic | app | req/s | per round | × bare | target | p99 ms | worker CPU µs/req "
                 "| Redis CPU µs/req |",
                 "|---|---|---:|---|---:|---|---:|---:|---:|"]
        for traffic, target in TARGETS.items():
            bare, wrapped = pages.saturated[(traffic, "bare")], pages.saturated[(traffic, "footfall")]
            base = median_rate(bare)
            for app, samples in (("bare", bare), ("footfall", wrapped)):
                rate = median_rate(samples)
                ratio = rate / base
                verdict = ""
                if app == "footfall":
                    added_us = 1e6 / rate - 1e6 / base
                    allowed_us = 1e6 / base * (1 / target - 1)
                    verdict = _verdict(ratio >= target, f"≥ {target:.2f}× ({ratio - target:+.2f}×); footfall adds "
                                       f"{added_us:.0f} µs/req, the target allows {allowed_us:.0f}")
                lines.append(
                    f"| {traffic} | {app} | {rate:,.0f} | {' / '.join(f'{s.wrk.rate:,.0f}' for s in samples)} "
                    f"| {ratio:.2f} | {verdict} | {_pooled(samples, 99):.1f} "
                    f"| {_median([s.worker_us for s in samples]):.0f} | {_median([s.redis_us for s in samples]):.0f} |")
        return "\n".join(lines)

    @staticmethod
    def _latency(pages: PageResults) -> str:
        lines = [f"### {pages.name} added latency at a held rate (about half of footfall's saturated throughput)", "",
                 "Percentiles of all the rounds' requests together (wrk's histograms pooled); p99 of each round "
                 "in brackets.", "",
                 "| traffic | held req/s (bare / footfall) | bare p50 / p99 ms | footfall p50 / p99 ms | added p50 "
                 "| added p99 | target |",
                 "|---|---|---|---|---:|---:|---|"]
        for traffic in TARGETS:
            bare, wrapped = pages.paced[(traffic, "bare")], pages.paced[(traffic, "footfall")]
            added = pages.added_ms(traffic, 99)
            verdict = _verdict(added <= ADDED_P99_TARGET_MS,
                               f"≤ {ADDED_P99_TARGET_MS:g} ms ({added - ADDED_P99_TARGET_MS:+.2f} ms)")

            def cell(samples: list[Sample]) -> str:
                rounds = " / ".join(f"{s.wrk.p99_ms:.1f}" for s in samples)
                return f"{_pooled(samples, 50):.2f} / {_pooled(samples, 99):.2f} [{rounds}]"

            rates = f"{median_rate(bare):,.0f} / {median_rate(wrapped):,.0f}"
            lines.append(f"| {traffic} | {rates} | {cell(bare)} | {cell(wrapped)} "
                         f"| {pages.added_ms(traffic, 50):+.2f} ms | {added:+.2f} ms | {verdict} |")
        return "\n".join(lines)

    def _round_trips(self) -> str:
        lines = ["### Redis round trips per request (counted with MONITOR)", "",
                 "| request kind | Redis round trips | sent over the wire, per request | run inside the Lua script, "
                 "per request | MongoDB requests |",
                 "|---|---:|---|---|---:|"]

        def fmt(counts: dict[str, float]) -> str:
            return ", ".join(f"{name} {value:g}" for name, value in counts.items()) or "none"

        for rt in self.round_trips:
            lines.append(f"| {rt.kind} | {rt.round_trips:g} | {fmt(rt.wire)} | {fmt(rt.in_script)} | {rt.mongodb:g} |")
        return "\n".join(lines)

    def _track(self) -> str:
        track, bare = median_rate(self.track), median_rate(self.track_bare)
        lines = ["### `POST /analytics/track` and the drain", "",
                 "| measure | value |", "|---|---|",
                 f"| track req/s, drain stopped (per round) | {track:,.0f} "
                 f"({' / '.join(f'{s.wrk.rate:,.0f}' for s in self.track)}); {track / bare:.2f}× the bare app's "
                 f"GET / ({bare:,.0f}) in the same rounds |",
                 f"| track p99 ms, worker CPU µs/req | {_pooled(self.track, 99):.1f} ms, "
                 f"{_median([s.worker_us for s in self.track]):.0f} µs |"]
        if self.drain is not None:
            d = self.drain
            cpu = ", ".join(f"{name} {ms:.2f}" for name, ms in d.cpu_ms_per_event.items())
            lines += [f"| drain sustained, events/s | {d.rate:,.0f} ({d.events:,} events in {d.seconds:.1f} s, backlog "
                      f"never empty; {d.backlog_left:,} left) |",
                      f"| drain vs ingest | {d.rate / track:.2f}× the track ingest rate |",
                      f"| CPU ms per drained event | {cpu} |"]
        return "\n".join(lines)

    def _lag(self) -> str:
        lines = ["### Backlog and lag with the drain running (target: bounded, lag ≤ 2 s at 80 % of ingest)", "",
                 "| load | held events/s (achieved) | max backlog | backlog growth | max lag of the oldest entry "
                 "| probes accept→visible median / max | after the load | CPU % of one core | verdict |",
                 "|---|---|---:|---:|---:|---|---|---|---|"]
        for lag in self.lags:
            achieved = f"{lag.wrk.rate:,.0f}" if lag.wrk else "?"
            probes = (f"{_median(lag.probe_delays):.2f} / {max(lag.probe_delays):.2f} s" if lag.probe_delays
                      else "none seen")
            if lag.probes_unseen:
                probes += f", {lag.probes_unseen} not visible by the end"
            after = (f"empty {lag.recovery_seconds:.1f} s later" if lag.recovery_seconds is not None
                     else f"{lag.samples[-1][1]:,} still queued" if lag.samples else "?")
            cpu = ", ".join(f"{name} {pct:.0f}" for name, pct in lag.cpu_percent.items())
            worst = max([lag.max_lag, *lag.probe_delays])
            verdict = _verdict(lag.met, f"lag {worst:.1f} s vs ≤ {LAG_TARGET:g} s"
                               + ("" if lag.bounded else f"; backlog grows {lag.growth:,.0f}/s"))
            lines.append(f"| {lag.label} | {lag.target_rate:,.0f} ({achieved}) | {lag.max_backlog:,} "
                         f"| {lag.growth:+,.0f}/s | {lag.max_lag:.1f} s | {probes} | {after} | {cpu} | {verdict} |")
        return "\n".join(lines)
