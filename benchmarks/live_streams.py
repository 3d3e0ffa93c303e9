"""Tracking throughput with and without open live streams: ``python -m benchmarks.live_streams``.

Starts throwaway stores (:mod:`footfall.embedded`, no data dir) and ``footfall serve`` on them (its
production configuration: gunicorn with footfall's uvicorn workers, and its drain process), creates
``--visitors`` visitors over HTTP, then alternates rounds of ``wrk`` posting page views of those
visitors to ``POST /analytics/track`` for ``--seconds``:

- **without** streams;
- **with** ``--streams`` Server-Sent Events streams open on ``/analytics/live`` (a separate process
  holds them and reads every frame; it reports how many streams got updates and the longest silence).

Every page view changes the site's counters, so every request publishes a change notice that both
workers receive, and each worker coalesces them into at most one message per second per stream.
Prints medians per round kind and the ratio with/without. All traffic is on 127.0.0.1; every
process it starts is stopped when it ends (also on Ctrl-C). Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.servers import cpu_seconds
from benchmarks.visitors import create_visitors_over_http, write_jars
from benchmarks.wrk import WrkLoad, run_wrk
from footfall.embedded import free_port, is_listening, start_mongodb, start_redis, stop_process

__all__ = ["main"]

TOKEN = secrets.token_urlsafe(16)  # throwaway, this run's only


async def _hold(port: int, streams: int, seconds_file: Path, token: str) -> None:
    """Open ``streams`` SSE connections and read them until SIGTERM; write what they got as JSON."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    events: list[list[float]] = [[] for _ in range(streams)]  # time.monotonic() of each event
    request = (f"GET /analytics/live?site=default HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode()

    statuses: dict[str, int] = {}

    async def one(index: int) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            status = (await reader.readline()).decode(errors="replace").strip()
            statuses[status] = statuses.get(status, 0) + 1
            while line := await reader.readline():
                if line.startswith(b"event: visitor_update"):
                    events[index].append(time.monotonic())
            statuses["closed by the server"] = statuses.get("closed by the server", 0) + 1
            writer.close()
        except OSError as exc:
            statuses[repr(exc)] = statuses.get(repr(exc), 0) + 1

    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    print("HOLDING", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    seconds_file.write_text(json.dumps({"events": events, "statuses": statuses}))


def _start_serve(redis_url: str, mongodb_uri: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(FOOTFALL_REDIS_URL=redis_url, FOOTFALL_MONGODB_URI=mongodb_uri,
               FOOTFALL_SECRET_KEY=secrets.token_urlsafe(32), FOOTFALL_ADMIN_TOKEN=TOKEN,
               FOOTFALL_COOKIE_SECURE="false")
    proc = subprocess.Popen([sys.executable, "-m", "footfall", "serve", "--port", str(port), "--workers",
                             str(workers)], env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while not is_listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"footfall serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def _children(pid: int) -> list[int]:
    import psutil  # type: ignore[import-untyped]

    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report (markdown)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_streams", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200, help="open SSE streams in the 'with' rounds (200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (3)")
    parser.add_argument("--workers", type=int, default=2, help="footfall serve workers (2, its default)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--visitors", type=int, default=1000, help="visitors whose page views are posted (1000)")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.hold:  # the stream-holding child process
        asyncio.run(_hold(options.port, options.hold, options.out, options.token))
        return 0

    work = Path(tempfile.mkdtemp(prefix="footfall-live-bench-"))
    redis_server, mongodb_server = start_redis(None), start_mongodb(None)
    port = free_port()
    serve = holder = None
    try:
        serve = _start_serve(redis_server.url, mongodb_server.url, port, options.workers,
                             work / "serve.log")
        base = f"http://127.0.0.1:{port}"
        jars = write_jars(create_visitors_over_http(base, options.visitors), work / "jars.txt")
        body = work / "body.json"
        body.write_text(json.dumps({"eventType": "page_view", "path": "/bench"}))
        load = WrkLoad(cookies=jars, body=body, connections=options.connections, threads=2)
        run_wrk(f"{base}/analytics/track", load, 2)  # warm-up
        rates: dict[str, list[float]] = {"without": [], "with": []}
        p99: dict[str, list[float]] = {"without": [], "with": []}
        cpu: dict[str, list[float]] = {"without": [], "with": []}
        held: list[dict[str, object]] = []
        windows: list[tuple[float, float]] = []
        for round_index in range(options.rounds):
            for kind in (("without", "with") if round_index % 2 == 0 else ("with", "without")):
                if kind == "with":
                    report = work / f"hold-{round_index}.json"
                    holder = subprocess.Popen([sys.executable, "-m", "benchmarks.live_streams", "--hold",
                                               str(options.streams), "--port", str(port), "--out", str(report),
                                               "--token", TOKEN],
                                              stdout=subprocess.PIPE, start_new_session=True)
                    assert holder.stdout is not None
                    holder.stdout.readline()  # HOLDING
                    time.sleep(2)  # every stream connected and got its first state
                pids = _children(serve.pid)
                cpu_before = cpu_seconds(pids)
                window = time.monotonic()
                result = run_wrk(f"{base}/analytics/track", load, options.seconds)
                windows.append((window + 1, time.monotonic() - 1))  # inside wrk's run, traffic flowing
                cpu[kind].append((cpu_seconds(pids) - cpu_before) / max(1, result.requests) * 1e6)
                rates[kind].append(result.rate)
                p99[kind].append(result.p99_ms)
                if result.errors:
                    print(f"warning: {result.errors} wrk errors in a '{kind}' round", file=sys.stderr)
                if kind == "with" and holder is not None:
                    holder.send_signal(signal.SIGTERM)
                    holder.wait(30)
                    holder = None
                    held.append({**json.loads(report.read_text()), "window": windows[-1]})
        without, with_streams = statistics.median(rates["without"]), statistics.median(rates["with"])
        print(f"## POST /analytics/track with and without {options.streams} open SSE streams\n")
        print(f"`footfall serve --workers {options.workers}`, wrk {options.connections} connections, "
              f"{options.seconds:g} s × {options.rounds} rounds each, {options.visitors} visitors' page views\n")
        print("| | requests/s (median) | rounds | p99 ms (median) | server CPU µs/request |")
        print("|---|---|---|---|---|")
        for kind, label in (("without", "without streams"), ("with", f"with {options.streams} streams")):
            print(f"| {label} | {statistics.median(rates[kind]):.0f} | "
                  f"{', '.join(f'{r:.0f}' for r in rates[kind])} | {statistics.median(p99[kind]):.1f} | "
                  f"{statistics.median(cpu[kind]):.0f} |")
        print(f"\n**ratio with/without: {with_streams / without:.3f}**\n")
        for index, stats in enumerate(held):
            start, end = stats["window"]  # type: ignore[misc]
            per_stream = [[t for t in times if start <= t <= end] for times in stats["events"]]  # type: ignore[attr-defined]
            gaps = [max(b - a for a, b in zip([start, *times], [*times, end], strict=True)) for times in per_stream]
            rates_in = [len(times) / (end - start) for times in per_stream]
            print(f"- round {index + 1}: {sum(1 for times in per_stream if times)}/{len(per_stream)} streams got "
                  f"updates while wrk ran, {min(rates_in):.2f}-{max(rates_in):.2f} messages/s each, longest "
                  f"silence {max(gaps):.2f} s; responses {stats['statuses']}")
        print(f"\nlogs: {work}")
        return 0
    finally:
        if holder is not None:
            holder.kill()
        if serve is not None:
            serve.send_signal(signal.SIGTERM)  # footfall serve stops gunicorn, then its drain
            try:
                serve.wait(60)
            except subprocess.TimeoutExpired:
                stop_process(serve)
        redis_server.stop()
        mongodb_server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
