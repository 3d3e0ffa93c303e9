"""The dashboard-query benchmark's report (:mod:`benchmarks.queries`): one markdown row per measured
query, printed as soon as it is measured, and the issue 11 table at the end."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks.report import code_version

__all__ = ["Measurement", "HEADER", "row", "size_label", "machine", "summary_table", "strip_source"]

HEADER = ("| size | case | median ms | min ms | runs | growth vs 10k | goal | met | source | raw ms | exact |\n"
          "|---:|---|---:|---:|---:|---:|---|---|---|---:|---|")


@dataclass(frozen=True)
class Measurement:
    """One case at one size.

    :ivar times: the measured runs of the public function with rollups on, wall seconds (warm-up excluded).
    :ivar group: the line of issue 11's table the case belongs to.
    :ivar source: the answer's ``source`` (``"rollups"`` expected).
    :ivar goal_ms: the issue's latency goal (ms); :ivar growth_goal: the allowed growth from 10k.
    :ivar growth: median / the 10k median (``None`` at 10k itself, or without a 10k run).
    :ivar raw: the ``rollups=False`` run's wall seconds, ``None`` when not run.
    :ivar exact: the rollup answer equals the raw one (minus ``source``); ``None`` when not compared.
    """

    size: int
    case: str
    group: str
    times: list[float]
    source: str
    goal_ms: float
    growth_goal: float | None
    growth: float | None
    raw: float | None = None
    exact: bool | None = None

    @property
    def median(self) -> float:
        """Median of the measured runs, seconds."""
        return statistics.median(self.times)

    @property
    def met(self) -> bool:
        """The latency goal, the growth goal (when known) and ``source == "rollups"`` all hold."""
        growth_ok = self.growth is None or self.growth_goal is None or self.growth <= self.growth_goal
        return self.median * 1000 <= self.goal_ms and growth_ok and self.source == "rollups"


def size_label(size: int) -> str:
    """``10k``, ``1M``: a size as the rows show it."""
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k" if size % 1000 == 0 else str(size)


def row(m: Measurement) -> str:
    """The markdown table row of one measurement (:data:`HEADER`'s columns)."""
    growth = "—" if m.growth is None else f"{m.growth:.2f}×"
    goal = f"≤ {m.goal_ms:,.0f} ms" + ("" if m.growth_goal is None else f", ≤ {m.growth_goal:g}×")
    source = m.source if m.source == "rollups" else f"**{m.source}** (expected rollups)"
    raw = "—" if m.raw is None else f"{m.raw * 1000:,.0f}"
    exact = "—" if m.exact is None else "yes" if m.exact else "**NO**"
    return (f"| {size_label(m.size)} | {m.case} | {m.median * 1000:,.1f} | {min(m.times) * 1000:,.1f} | {len(m.times)} "
            f"| {growth} | {goal} | {'yes' if m.met else '**no**'} | {source} | {raw} | {exact} |")


def strip_source(answer: Any) -> Any:
    """The answer without its ``source`` key (what must be equal with rollups on and off)."""
    return {k: v for k, v in answer.items() if k != "source"} if isinstance(answer, dict) else answer


def machine() -> str:
    """Cores, memory, load averages, Python and the commit, one line."""
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        total = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1]) // 1024 // 1024
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} cores, {total} GiB, load average (1/5/15 min) {load}, "
            f"Python {platform.python_version()}, commit {code_version()}")


def summary_table(results: list[Measurement], groups: dict[str, tuple[float, float | None]], sizes: list[int]) -> str:
    """The issue's table: per line (title → goal ms, growth goal), the worst median at the largest
    size, the worst growth, and whether every case of the line met its goals."""
    largest = max(sizes)
    lines = [f"| measure | worst median at {size_label(largest)} | worst growth vs 10k | goal | met |",
             "|---|---:|---:|---|---|"]
    for title, (goal_ms, growth_goal) in groups.items():
        found = [m for m in results if m.group == title and m.size == largest]
        if not found:
            lines.append(f"| {title} | not measured | — | ≤ {goal_ms:,.0f} ms | — |")
            continue
        worst = max(found, key=lambda m: m.median)
        growths = [m.growth for m in found if m.growth is not None]
        growth = f"{max(growths):.2f}×" if growths else "—"
        goal = f"≤ {goal_ms:,.0f} ms" + ("" if growth_goal is None else f", ≤ {growth_goal:g}×")
        met = all(m.met for m in found)
        lines.append(f"| {title} | {worst.median * 1000:,.0f} ms ({worst.case}) | {growth} | {goal} "
                     f"| {'yes' if met else '**no**'} |")
    return "\n".join(lines)
