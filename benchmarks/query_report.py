"""The dashboard-query benchmark's report (:mod:`benchmarks.queries`): markdown tables of one run."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

from benchmarks.query_data import LoadResult
from benchmarks.report import code_version

__all__ = ["Plan", "Measurement", "SizeResult", "markdown"]


@dataclass(frozen=True)
class Plan:
    """The index a (sub-)pipeline's leading ``$match`` uses on ``collection`` (``COLLSCAN`` when none)."""

    collection: str
    index: str

    def __str__(self) -> str:
        return f"{self.collection}: {self.index}"


@dataclass(frozen=True)
class Measurement:
    """One query at one size, in one zone.

    :ivar times: the measured runs, wall seconds (the warm-up excluded); empty when it did not run.
    :ivar warm: the warm-up run, wall seconds (``None`` when it did not finish).
    :ivar answer: what the query returned (to compare rollups on and off).
    :ivar timed_out: the timeout (seconds) the warm-up passed, else ``None``.
    :ivar skipped: not run, having timed out at a smaller size.
    """

    case: str
    zone: str
    rollups: bool
    times: list[float]
    warm: float | None
    plans: list[Plan]
    answer: Any
    timed_out: float | None = None
    skipped: bool = False

    @property
    def median(self) -> float | None:
        """Median of the measured runs, seconds (``None`` when none finished)."""
        return statistics.median(self.times) if self.times else None


@dataclass(frozen=True)
class SizeResult:
    """One size: its load, its measurements, notes, and how long the queries took (seconds)."""

    size: int
    load: LoadResult
    measurements: list[Measurement]
    notes: list[str]
    query_seconds: float

    def find(self, case: str, zone: str, rollups: bool = True) -> Measurement | None:
        """The measurement of ``case`` in ``zone``, or ``None``."""
        return next((m for m in self.measurements if (m.case, m.zone, m.rollups) == (case, zone, rollups)), None)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _header(command: str) -> list[str]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    except OSError:
        pass
    return [f"Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{command}`", "",
            f"- machine: {os.cpu_count()} cores (`nproc`), {model}; Linux {platform.release()}; "
            f"Python {platform.python_version()}; pymongo {_version('pymongo')}; "
            f"SecantusDB {_version('secantusdb')} (`secantusd-py` as `footfall.embedded` starts it, on a temporary "
            "data dir, default 1 GB WiredTiger cache); the benchmark client and the server share the cores",
            f"- code: {code_version()}"]


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def _cell(measurement: Measurement | None, repeat: int) -> str:
    if measurement is None:
        return "–"
    if measurement.timed_out is not None:
        return f"> {measurement.timed_out:,.0f} s (timed out)"
    if measurement.skipped:
        return "not run"
    runs = len(measurement.times)
    return _ms(measurement.median) + ("" if runs >= repeat else f" (n={runs})")


def _ratio(after: Measurement | None, before: Measurement | None) -> str:
    if after is None or before is None or not after.median or not before.median:
        return "–"
    return f"{after.median / before.median:.1f}×"


def _size_label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else f"{size:,}"


def _load_table(results: list[SizeResult]) -> list[str]:
    lines = ["### Data and load (one fresh server per size)", "",
             "| size | copies of the log | page views | visits | visitors | rollup hours | insert | "
             "indexes | rollup rebuild | load total | inserts/s | query phase |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        load = result.load
        docs = load.page_views + load.sessions + load.visitors
        lines.append(f"| {_size_label(result.size)} | {load.copies} | {load.page_views:,} | {load.sessions:,} "
                     f"| {load.visitors:,} | {load.rollups:,} | {load.insert_seconds:,.0f} s "
                     f"| {load.index_seconds:,.0f} s | {load.rollup_seconds:,.0f} s | {load.seconds:,.0f} s "
                     f"| {docs / load.insert_seconds:,.0f} | {result.query_seconds:,.0f} s |")
    return lines


def _growth_headers(results: list[SizeResult]) -> list[str]:
    return [f"t({_size_label(b.size)}) / t({_size_label(a.size)}) (data ×{b.load.page_views / a.load.page_views:.1f})"
            for a, b in zip(results, results[1:], strict=False)]


def _latency_table(results: list[SizeResult], repeat: int) -> list[str]:
    growth = _growth_headers(results)
    lines = ["### Latency (median wall time of the public function; rollups used where the query may)", "",
             "| query | tz | " + " | ".join([_size_label(r.size) for r in results] + growth) + " |",
             "|---|---|" + "---:|" * (len(results) + len(growth))]
    first = results[0]
    for m in (m for m in first.measurements if m.rollups):
        row = [r.find(m.case, m.zone) for r in results]
        cells = [_cell(x, repeat) for x in row] + [_ratio(b, a) for a, b in zip(row, row[1:], strict=False)]
        lines.append(f"| {m.case} | {m.zone} | " + " | ".join(cells) + " |")
    return lines


def _rollup_table(results: list[SizeResult], repeat: int) -> list[str]:
    lines = ["### Rollups on against off (`rollups=False`: the same answer from the raw collections)", "",
             "| query | tz | " + " | ".join(f"{_size_label(r.size)} on / off" for r in results)
             + " | growth on | growth off |",
             "|---|---|" + "---:|" * (len(results) + 2)]
    first = results[0]
    for m in (m for m in first.measurements if not m.rollups):
        on = [r.find(m.case, m.zone, True) for r in results]
        off = [r.find(m.case, m.zone, False) for r in results]
        cells = [f"{_cell(a, repeat)} / {_cell(b, repeat)}" for a, b in zip(on, off, strict=True)]
        lines.append(f"| {m.case} | {m.zone} | " + " | ".join(cells) + " | "
                     + ", ".join(_ratio(b, a) for a, b in zip(on, on[1:], strict=False)) + " | "
                     + ", ".join(_ratio(b, a) for a, b in zip(off, off[1:], strict=False)) + " |")
    return lines


def _plan_table(results: list[SizeResult]) -> list[str]:
    lines = ["### Index of each pipeline's first `$match` (`explain`, queryPlanner)", "",
             "| query | rollups | plans (every size unless noted) |", "|---|---|---|"]
    seen = set()
    for m in results[0].measurements:
        if (m.case, m.rollups) in seen:
            continue
        seen.add((m.case, m.rollups))
        plans = {_size_label(r.size): ", ".join(map(str, found.plans)) for r in results
                 if (found := r.find(m.case, m.zone, m.rollups)) is not None}
        shown = next(iter(plans.values())) if len(set(plans.values())) == 1 else "; ".join(
            f"{size}: {text}" for size, text in plans.items())
        lines.append(f"| {m.case} | {'on' if m.rollups else 'off'} | {shown} |")
    return lines


def markdown(command: str, results: list[SizeResult], limits: Any, filters: str, days: str) -> str:
    """The whole report of one run (``results`` in size order; ``limits``: :class:`benchmarks.queries.Limits`)."""
    repeat = limits.repeat
    parts = [*_header(command),
             f"- data: the semicomplete log (1,791 page views, 1,180 visits) copied with shifted dates and fresh "
             f"visitor ids into days {days} (30 days, one site); queries over that whole range, in UTC and in "
             "Europe/Berlin; the previous period (30 days before) is empty",
             f"- each query: one warm-up, then the median of {repeat} runs (n= when fewer ran, to keep the "
             f"measured runs within {limits.budget:,.0f} s); a run longer than {limits.timeout:,.0f} s is "
             "abandoned (the server restarted: SecantusDB ignores maxTimeMS) and not tried at larger sizes; "
             f"the filtered summary uses `{filters}`",
             *[f"- {r.size:,}: {note}" for r in results for note in r.notes],
             "", *_load_table(results), "", *_latency_table(results, repeat), "", *_rollup_table(results, repeat),
             "", *_plan_table(results)]
    return "\n".join(parts) + "\n"
