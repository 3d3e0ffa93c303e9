"""The drain under load: its sustained rate into MongoDB, and the backlog and lag at a given ingest rate.

- :func:`measure_drain`: with a backlog already queued (the track rounds ran with no drain), start
  ``footfall drain`` and count what it writes (``written`` in ``footfall:counters``) while the
  backlog lasts, at most ``max_seconds``.
- :func:`lag_run`: with the drain running, post events at a held rate (wrk with a per-connection
  pause, calibrated once) and sample the backlog (:func:`footfall.drain.backlog`) every 0.5 s; every
  second a probe posts an event with its own ``event_id`` and waits until that page view is in
  MongoDB's ``page_views``, the collection ``/analytics/stats`` counts: its accept-to-visible delay.
"""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import redis
from pymongo.database import Database

from benchmarks.visitors import BROWSER_UA
from benchmarks.wrk import WrkLoad, WrkResult, run_wrk
from footfall.drain import backlog
from footfall.stores.documents import PAGE_VIEWS
from footfall.stores.redis_sessions import COUNTERS_KEY, STREAM_KEY

__all__ = ["DrainResult", "LagResult", "measure_drain", "lag_run", "clear_backlog", "written"]

SAMPLE_EVERY = 0.5  # seconds between backlog samples
PROBE_EVERY = 1.0  # seconds between probes
LAG_TARGET = 2.0  # seconds, the target
CALIBRATION_SECONDS = 3.0


def written(client: redis.Redis) -> int:
    """Events the drains have written so far (``footfall:counters`` ``written``)."""
    return int(client.hget(COUNTERS_KEY, "written") or 0)


def clear_backlog(client: redis.Redis) -> int:
    """Discard every queued event (between phases, so each starts from an empty stream).

    :return: how many were discarded.
    """
    return int(client.xtrim(STREAM_KEY, maxlen=0, approximate=False))


@dataclass(frozen=True)
class DrainResult:
    """The drain's sustained rate over a window in which the backlog never ran out.

    :ivar cpu_ms_per_event: CPU milliseconds per written event, by process (drain, mongodb, redis).
    """

    events: int
    seconds: float
    backlog_left: int
    cpu_ms_per_event: dict[str, float]

    @property
    def rate(self) -> float:
        """Events written per second."""
        return self.events / self.seconds if self.seconds else 0.0


def measure_drain(client: redis.Redis, start_drain: Callable[[], None], pids: dict[str, int],
                  max_seconds: float, cpu: Callable[[list[int]], float],
                  on_window: Callable[[], None] | None = None) -> DrainResult:
    """Start the drain on a queued backlog and time its writes until the backlog is gone.

    The window opens at the first sample where ``written`` has grown (the drain's imports and
    connections are not counted) and closes when the stream is empty or after ``max_seconds``.

    :param start_drain: starts ``footfall drain``; ``pids`` must hold its pid once started.
    :param pids: process name → pid, CPU-accounted over the window (``drain`` is read after the start).
    :param cpu: returns the CPU seconds used so far by a list of pids.
    :param on_window: called when the window opens (to start profilers).
    """
    first = written(client)
    start_drain()
    deadline = time.monotonic() + max_seconds + 30  # + the drain's start-up
    while written(client) == first and time.monotonic() < deadline:
        time.sleep(0.05)
    if on_window is not None:
        on_window()
    t0, w0 = time.monotonic(), written(client)
    cpu0 = {name: cpu([pid]) for name, pid in pids.items()}
    end = min(deadline, t0 + max_seconds)
    while time.monotonic() < end and client.xlen(STREAM_KEY) > 0:
        time.sleep(0.1)
    t1, w1 = time.monotonic(), written(client)
    events = w1 - w0
    per_event = {name: (cpu([pid]) - cpu0[name]) * 1000 / max(events, 1) for name, pid in pids.items()}
    return DrainResult(events, t1 - t0, int(client.xlen(STREAM_KEY)), per_event)


@dataclass
class LagResult:
    """One held-rate run with the drain running.

    :ivar target_rate: the rate asked for (events/s); ``wrk`` holds what was achieved.
    :ivar samples: ``(seconds since start, backlog length, age of the oldest entry in s)``.
    :ivar probe_delays: accept-to-visible seconds of each probe seen in MongoDB.
    :ivar probes_unseen: probes not visible by the end of the recovery window.
    :ivar recovery_seconds: from the end of the load until the backlog was empty (``None``: it was
        not empty at the end of the window).
    """

    label: str
    target_rate: float
    pace_ms: int | None
    wrk: WrkResult | None = None
    samples: list[tuple[float, int, float]] = field(default_factory=list)
    probe_delays: list[float] = field(default_factory=list)
    probes_unseen: int = 0
    recovery_seconds: float | None = None
    load_seconds: float = 0.0
    cpu_percent: dict[str, float] = field(default_factory=dict)

    @property
    def max_backlog(self) -> int:
        """Largest backlog sampled (entries)."""
        return max((length for _, length, _ in self.samples), default=0)

    @property
    def max_lag(self) -> float:
        """Largest age of the oldest queued entry sampled (seconds)."""
        return max((lag for _, _, lag in self.samples), default=0.0)

    @property
    def growth(self) -> float:
        """Least-squares slope of the backlog during the load (entries per second)."""
        points = [(t, n) for t, n, _ in self.samples if t <= self.load_seconds]
        if len(points) < 3:
            return 0.0
        return statistics.linear_regression([t for t, _ in points], [float(n) for _, n in points]).slope

    @property
    def bounded(self) -> bool:
        """The backlog did not keep growing: its slope is under 5 % of the achieved rate."""
        return self.wrk is not None and self.growth < 0.05 * self.wrk.rate

    @property
    def met(self) -> bool:
        """The issue's target: bounded backlog and every lag (sampled and probed) ≤ 2 s."""
        worst_probe = max(self.probe_delays, default=0.0)
        return self.bounded and self.probes_unseen == 0 and max(self.max_lag, worst_probe) <= LAG_TARGET


class _Probe(threading.Thread):
    """Posts one uniquely identified page view per second and records when each became visible."""

    def __init__(self, base_url: str, jar: str, db: Database, stop: threading.Event, give_up: threading.Event):
        super().__init__(name="benchmark-probe", daemon=True)
        host, port = base_url.removeprefix("http://").split(":")
        self.address = (host, int(port))
        self.jar, self.db, self.stop, self.give_up = jar, db, stop, give_up
        self.accepted: dict[str, float] = {}
        self.delays: dict[str, float] = {}

    def _post(self) -> None:
        event_id = str(uuid.uuid4())
        body = json.dumps({"eventType": "page_view", "path": "/bench/probe", "event_id": event_id})
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            conn.request("POST", "/analytics/track", body=body, headers={
                "User-Agent": BROWSER_UA, "Cookie": self.jar, "Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                self.accepted[event_id] = time.monotonic()
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def _check(self) -> None:
        waiting = [event_id for event_id in self.accepted if event_id not in self.delays]
        if not waiting:
            return
        seen = [doc["_id"] for doc in self.db[PAGE_VIEWS].find({"_id": {"$in": waiting}}, {"_id": 1})]
        now = time.monotonic()
        for event_id in seen:
            self.delays[event_id] = now - self.accepted[event_id]

    def run(self) -> None:
        next_post = time.monotonic()
        while not self.give_up.is_set():  # bounded: the runner sets give_up after the recovery window
            if not self.stop.is_set() and time.monotonic() >= next_post:
                self._post()
                next_post += PROBE_EVERY
            self._check()
            if self.stop.is_set() and len(self.delays) == len(self.accepted):
                return
            self.give_up.wait(0.1)


def calibrate_pace(url: str, load: WrkLoad, rate: float) -> int | None:
    """The per-connection pause (ms) that holds ``load`` near ``rate`` requests/s, from one short run.

    :return: the pause, or ``None`` when even no pause cannot reach the rate (run unpaced).
    """
    first = max(1, round(load.connections * 1000 / rate))
    trial = run_wrk(url, replace(load, pace_ms=first), CALIBRATION_SECONDS)
    cycle_ms = load.connections * 1000 / max(trial.rate, 1.0)
    service_ms = max(0.0, cycle_ms - first)
    pace = round(load.connections * 1000 / rate - service_ms)
    return pace if pace >= 1 else None


def lag_run(*, label: str, url: str, base_url: str, load: WrkLoad, rate: float, seconds: float,
            recovery: float, client: redis.Redis, db: Database, probe_jar: str,
            cpu_pids: dict[str, int], cpu: Callable[[list[int]], float]) -> LagResult:
    """Hold ``rate`` track events/s for ``seconds`` with the drain running; sample backlog and lag.

    The calibration's events are discarded before the measured run starts from an empty stream.
    After the load, sampling goes on until the backlog is empty or ``recovery`` seconds pass.

    :param url: the track endpoint; ``base_url`` the same server (for the probes).
    :param cpu_pids: process name → pid whose CPU use is reported as a percentage of one core.
    """
    pace = calibrate_pace(url, load, rate)
    result = LagResult(label, rate, pace)
    time.sleep(1.0)
    clear_backlog(client)
    stop, give_up = threading.Event(), threading.Event()
    probe = _Probe(base_url, probe_jar, db, stop, give_up)
    t0 = time.monotonic()
    cpu0 = {name: cpu([pid]) for name, pid in cpu_pids.items()}

    def sample() -> tuple[float, int, float]:
        state = backlog(client)
        return time.monotonic() - t0, state.length, state.lag_seconds

    sampler_done = threading.Event()

    def sampler() -> None:
        while not sampler_done.is_set():  # bounded: the runner sets it after the recovery window
            result.samples.append(sample())
            sampler_done.wait(SAMPLE_EVERY)

    sampling = threading.Thread(target=sampler, name="benchmark-backlog", daemon=True)
    sampling.start()
    probe.start()
    try:
        result.wrk = run_wrk(url, replace(load, pace_ms=pace), seconds)
    finally:
        result.load_seconds = time.monotonic() - t0
        result.cpu_percent = {name: (cpu([pid]) - cpu0[name]) * 100 / result.load_seconds
                              for name, pid in cpu_pids.items()}
        stop.set()
        end = time.monotonic() + recovery
        while time.monotonic() < end:
            if client.xlen(STREAM_KEY) == 0 and probe.delays.keys() >= probe.accepted.keys():
                result.recovery_seconds = time.monotonic() - t0 - result.load_seconds
                break
            time.sleep(0.1)
        give_up.set()
        sampler_done.set()
        probe.join(10)
        sampling.join(10)
    result.probe_delays = sorted(probe.delays.values())
    result.probes_unseen = len(probe.accepted) - len(probe.delays)
    return result
