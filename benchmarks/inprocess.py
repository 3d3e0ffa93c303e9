"""Where footfall's time goes per request, measured in this process, one thread, no HTTP server.

The bare and the wrapped app are called as WSGI apps in a loop (``N`` requests each, bounded), so
the cost of footfall is seen without gunicorn, wrk or other threads competing for the same cores;
then the wrapped loop runs again under pyinstrument and each function's inclusive share of that loop
is turned into microseconds per request by multiplying it with the unprofiled loop's cost (the
profiler's own overhead roughly doubles the loop, and weighs most on code with many small calls, so
these are estimates). A ``PING`` through footfall's own Redis client gives the floor of any redis-py
round trip on this machine.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.apps import create_bare, create_wrapped, wrapped_settings
from benchmarks.visitors import BROWSER_UA
from footfall.stores.connect import redis_client

__all__ = ["Breakdown", "measure_inprocess", "timed", "inclusive_shares"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Breakdown:
    """In-process costs, µs per request.

    :ivar interface: ``WSGI`` or ``ASGI``.
    :ivar call: how the apps were called, e.g. ``WSGI call in a loop``.
    :ivar loop_us: ``(traffic, app)`` → wall µs per request of the whole WSGI call.
    :ivar loop_cpu_us: the same in CPU µs (this process's CPU time: the wait for Redis is not in it).
    :ivar functions: ``traffic`` → ``[(function, inclusive share of the wrapped call)]``, largest first.
    """

    interface: str
    call: str
    requests: int
    ping_us: float
    ping_cpu_us: float
    loop_us: dict[tuple[str, str], float]
    loop_cpu_us: dict[tuple[str, str], float]
    functions: dict[str, list[tuple[str, float]]]

    def markdown(self) -> str:
        """Two tables: the loop costs, then the wrapped app's functions per traffic."""
        lines = [f"### {self.interface} in-process cost per request ({self.call}, {self.requests:,} requests, "
                 "one thread)", "",
                 "| traffic | bare µs (CPU µs) | footfall µs (CPU µs) | footfall adds µs (CPU µs) |",
                 "|---|---:|---:|---:|"]
        for traffic in ("same-session", "new-visitor"):
            bare, wrapped = self.loop_us[(traffic, "bare")], self.loop_us[(traffic, "footfall")]
            bare_cpu, wrapped_cpu = self.loop_cpu_us[(traffic, "bare")], self.loop_cpu_us[(traffic, "footfall")]
            lines.append(f"| {traffic} | {bare:.0f} ({bare_cpu:.0f}) | {wrapped:.0f} ({wrapped_cpu:.0f}) "
                         f"| {wrapped - bare:.0f} ({wrapped_cpu - bare_cpu:.0f}) |")
        lines += ["", f"A redis-py `PING` round trip with footfall's {self.interface} client: {self.ping_us:.0f} µs "
                  f"({self.ping_cpu_us:.0f} µs CPU).", ""]
        for traffic, rows in self.functions.items():
            wrapped = self.loop_us[(traffic, "footfall")]
            lines += [f"pyinstrument, {self.interface} footfall app, {traffic}: inclusive share of the call, and "
                      f"that share of the unprofiled {wrapped:.0f} µs:", "",
                      "| share | ≈ µs/req | function |", "|---:|---:|---|"]
            lines += [f"| {share:.0%} | {share * wrapped:.0f} | `{name}` |" for name, share in rows]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _environ(cookie: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""), "wsgi.errors": io.StringIO(), "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "HTTP_USER_AGENT": BROWSER_UA,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
    return None


def timed(action: Callable[[int], object], count: int) -> tuple[float, float]:
    """Run ``action(i)`` for ``i`` in ``range(count)``; return (wall µs, CPU µs) per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        action(i)
    return (time.perf_counter() - wall) * 1e6 / count, (time.process_time() - cpu) * 1e6 / count


def _loop(app: WSGIApp, jars: list[str] | None, count: int) -> tuple[float, float]:
    """Call ``app`` ``count`` times; return (wall µs, CPU µs) per call."""

    def call(i: int) -> None:
        for _ in app(_environ(jars[i % len(jars)] if jars else None), _start_response):
            pass

    return timed(call, count)


def inclusive_shares(root: Any, top: int) -> list[tuple[str, float]]:
    """Each function's inclusive share of the profiled loop (recursion counted once)."""
    totals: Counter[str] = Counter()

    def walk(frame: Any, above: frozenset[str]) -> None:
        if frame.function == "[self]" or frame.is_synthetic:
            return
        owner = f"{frame.class_name}." if frame.class_name else ""
        key = f"{owner}{frame.function} ({frame.file_path_short})"
        if key not in above:
            totals[key] += frame.time
        for child in frame.children:
            walk(child, above | {key})

    walk(root, frozenset())
    loop = max((seconds for name, seconds in totals.items() if name.startswith("_loop ")), default=root.time)
    rows = [(name, seconds / loop) for name, seconds in totals.items()
            if "benchmarks/" not in name and "<module>" not in name and seconds < loop]
    return sorted(rows, key=lambda row: -row[1])[:top]


def measure_inprocess(jars: list[str], count: int = 3000, top: int = 22) -> Breakdown:
    """Time the bare and the wrapped app in this process, then profile the wrapped one.

    :param jars: cookie jars of pre-created visitors (same-session traffic).
    :param count: requests per loop (each loop is bounded by it).
    :raises ImportError: pyinstrument is not installed (``.venv/bin/pip install pyinstrument``).
    """
    from pyinstrument import Profiler

    bare, wrapped = create_bare(), create_wrapped()
    client = redis_client(wrapped_settings())
    try:
        client.ping()
        ping_us, ping_cpu_us = timed(lambda i: client.ping(), count)
        traffics = {"same-session": jars, "new-visitor": None}
        for app in (bare, wrapped):  # warm-up
            _loop(app, jars, 100)
        loop_us, loop_cpu_us = {}, {}
        for traffic, traffic_jars in traffics.items():
            for name, app in (("bare", bare), ("footfall", wrapped)):
                loop_us[(traffic, name)], loop_cpu_us[(traffic, name)] = _loop(app, traffic_jars, count)
        functions = {}
        for traffic, traffic_jars in traffics.items():
            profiler = Profiler(interval=0.0001)
            profiler.start()
            _loop(wrapped, traffic_jars, count)
            session = profiler.stop()
            functions[traffic] = inclusive_shares(session.root_frame(), top)
    finally:
        client.close()
        wrapped.wsgi_app.close()  # type: ignore[attr-defined]
    return Breakdown("WSGI", "WSGI call in a loop", count, ping_us, ping_cpu_us, loop_us, loop_cpu_us, functions)
