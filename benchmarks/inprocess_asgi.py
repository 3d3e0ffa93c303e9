"""Where footfall's ASGI time goes per request, in this process, one event loop, no HTTP server.

The ASGI twin of :mod:`benchmarks.inprocess`: the bare and the wrapped Starlette app are awaited
with a ``GET /`` scope in a loop (``N`` requests each, one after the other, bounded) on the event
loop uvicorn uses (uvloop when installed), then the wrapped loop runs again under pyinstrument and
each function's inclusive share is turned into microseconds per request with the unprofiled loop's
cost (estimates: the profiler roughly doubles the loop). A ``PING`` through footfall's
``redis.asyncio`` client gives the floor of one awaited round trip.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Callable
from typing import Any

from benchmarks.apps import create_bare_asgi, create_wrapped_asgi, wrapped_settings
from benchmarks.inprocess import Breakdown, inclusive_shares
from benchmarks.visitors import BROWSER_UA
from footfall.stores.connect import async_redis_client

__all__ = ["measure_inprocess_asgi"]

ASGIApp = Callable[..., Any]


def _scope(cookie: str | None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", BROWSER_UA.encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode("latin-1")))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80), "state": {}}


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _loop(app: ASGIApp, jars: list[str] | None, count: int) -> tuple[float, float]:
    """Await ``app`` ``count`` times, one request after the other; return (wall µs, CPU µs) per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        await app(_scope(jars[i % len(jars)] if jars else None), _receive, _send)
    return (time.perf_counter() - wall) * 1e6 / count, (time.process_time() - cpu) * 1e6 / count


async def _ping(count: int) -> tuple[float, float]:
    client = async_redis_client(wrapped_settings())
    try:
        await client.ping()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(count):
            await client.ping()
        return (time.perf_counter() - wall) * 1e6 / count, (time.process_time() - cpu) * 1e6 / count
    finally:
        await client.aclose()


async def _measure(jars: list[str], count: int, top: int) -> Breakdown:
    from pyinstrument import Profiler

    bare, wrapped = create_bare_asgi(), create_wrapped_asgi()
    try:
        ping_us, ping_cpu_us = await _ping(count)
        traffics = {"same-session": jars, "new-visitor": None}
        for app in (bare, wrapped):  # warm-up: the middleware stack built, connections open
            await _loop(app, jars, 100)
        loop_us, loop_cpu_us = {}, {}
        for traffic, traffic_jars in traffics.items():
            for name, app in (("bare", bare), ("footfall", wrapped)):
                loop_us[(traffic, name)], loop_cpu_us[(traffic, name)] = await _loop(app, traffic_jars, count)
        functions = {}
        for traffic, traffic_jars in traffics.items():
            profiler = Profiler(interval=0.0001)
            profiler.start()
            await _loop(wrapped, traffic_jars, count)
            session = profiler.stop()
            functions[traffic] = inclusive_shares(session.root_frame(), top)
    finally:
        await wrapped.aclose()
    loop_name = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return Breakdown("ASGI", f"ASGI call awaited in a loop on {loop_name}", count, ping_us, ping_cpu_us, loop_us,
                     loop_cpu_us, functions)


def measure_inprocess_asgi(jars: list[str], count: int = 3000, top: int = 22) -> Breakdown:
    """Time the bare and the wrapped Starlette app in this process, then profile the wrapped one.

    :param jars: cookie jars of pre-created visitors (same-session traffic).
    :param count: requests per loop (each loop is bounded by it).
    :raises ImportError: pyinstrument is not installed (``.venv/bin/pip install pyinstrument``).
    """
    factory = None
    if importlib.util.find_spec("uvloop"):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(_measure(jars, count, top))
