"""Running ``wrk`` (Debian's package) with ``replay.lua`` and reading its result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "WrkLoad", "find_wrk", "run_wrk", "pooled_percentile"]

SCRIPT = Path(__file__).with_name("replay.lua")
MARKER = "WRK_JSON "


@dataclass(frozen=True)
class WrkLoad:
    """What wrk sends: the cookie jars to replay (``None``: no cookies, every request a new
    visitor), an optional JSON body (then every request is a ``POST``), and the shape of the load.

    :ivar connections: open connections; with ``pace_ms`` each waits that many milliseconds after
        each response, so the offered rate is about ``connections * 1000 / (pace_ms + latency)``.
    """

    cookies: Path | None = None
    body: Path | None = None
    connections: int = 8
    threads: int = 1
    pace_ms: int | None = None


@dataclass(frozen=True)
class WrkResult:
    """One wrk run. Latencies in milliseconds; ``errors`` adds socket errors, timeouts and
    responses with status ≥ 400 (wrk's ``status`` count).

    :ivar histogram: ``(latency µs, requests)`` pairs, every distinct latency of the run.
    """

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    histogram: tuple[tuple[int, int], ...] = ()

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def find_wrk() -> str:
    """Path of the ``wrk`` binary.

    :raises FileNotFoundError: wrk is not installed (Debian: ``apt-get install wrk``).
    """
    found = shutil.which("wrk")
    if not found:
        raise FileNotFoundError("wrk is not on PATH: apt-get install wrk")
    return found


def run_wrk(url: str, load: WrkLoad, seconds: float) -> WrkResult:
    """Drive ``url`` with ``load`` for ``seconds`` (at least 1) and return wrk's numbers.

    :param url: an ``http://127.0.0.1:PORT/...`` URL.
    :raises RuntimeError: wrk failed or printed no result (the message carries its output).
    """
    argv = [find_wrk(), "-t", str(load.threads), "-c", str(load.connections), "-d", f"{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", str(SCRIPT), url, "--", str(load.cookies or "-")]
    if load.body is not None:
        argv.append(str(load.body))
    env = {**os.environ, "WRK_PACE_MS": str(load.pace_ms or "")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith(MARKER)), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-600:]} {done.stderr[-600:]}")
    raw = json.loads(line[len(MARKER):])
    errors = sum(raw[key] for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return WrkResult(
        requests=raw["requests"], seconds=raw["duration_us"] / 1e6, p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000, p99_ms=raw["p99_us"] / 1000, max_ms=raw["max_us"] / 1000, errors=errors,
        histogram=tuple((int(value), int(count)) for value, count in raw["histogram"]),
    )


def pooled_percentile(results: list[WrkResult], percent: float) -> float:
    """The ``percent`` percentile (ms) of all the runs' requests together (their histograms pooled).

    :return: ``nan`` when the runs hold no histogram.
    """
    pairs = sorted(pair for result in results for pair in result.histogram)
    total = sum(count for _, count in pairs)
    if not total:
        return float("nan")
    rank = percent / 100 * total
    seen = 0
    for value, count in pairs:
        seen += count
        if seen >= rank:
            return value / 1000
    return pairs[-1][0] / 1000
