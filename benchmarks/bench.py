"""What a benchmark run sets up: its options, the stores, the app pairs, the visitors, the drain.

:func:`start` starts only what the selected parts (``--only``) need and stops everything it started,
newest first, on the way out (also on Ctrl-C).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Sample
from benchmarks.servers import (
    AppServer,
    DrainProcess,
    Gunicorn,
    GunicornConfig,
    Uvicorn,
    UvicornConfig,
    benchmark_env,
    cpu_seconds,
)
from benchmarks.visitors import create_visitors, create_visitors_over_http, write_jars
from benchmarks.wrk import WrkLoad, run_wrk
from footfall.drain import Drain
from footfall.embedded import ServerProcess, start_mongodb, start_redis
from footfall.settings import Settings
from footfall.stores.connect import mongo_database, redis_client

__all__ = ["PARTS", "ROUND_TRIP_REQUESTS", "Options", "Pair", "Bench", "start"]

PARTS = ("wsgi", "asgi", "round-trips", "drain")
ROUND_TRIP_REQUESTS = 200  # per request kind: more than a block of visitor numbers (100)
TRACK_BODY = {"eventType": "page_view", "path": "/bench/page", "title": "Benchmark page",
              "referrer": "https://example.com/"}


@dataclass(frozen=True)
class Options:
    """The command line, parsed.

    :ivar parts: the parts to run, a subset of :data:`PARTS` (all by default).
    """

    seconds: float
    rounds: int
    visitors: int
    connections: int
    gunicorn: GunicornConfig
    uvicorn: UvicornConfig
    profile: bool
    parts: frozenset[str]
    report: Path | None
    out: Path


@dataclass(frozen=True)
class Pair:
    """A bare app and the same app wrapped by footfall, under the same server and configuration.

    :ivar name: ``WSGI`` or ``ASGI``.
    :ivar label: what runs, e.g. ``Flask under gunicorn (1 worker, gthread × 4 threads)``.
    :ivar jars: the file of cookie jars (one per pre-created visitor) that same-session traffic replays.
    """

    name: str
    label: str
    bare: AppServer
    wrapped: AppServer
    jars: Path


@dataclass
class Bench:
    """The running servers and the inputs every phase shares.

    :ivar wsgi: the Flask pair (parts ``wsgi``, ``round-trips``, ``drain``), else ``None``.
    :ivar asgi: the Starlette pair (part ``asgi``), else ``None``.
    :ivar spare_jars: visitors no page load replays (round trips, lag probes).
    """

    opts: Options
    redis_server: ServerProcess
    mongodb: ServerProcess
    wsgi: Pair | None
    asgi: Pair | None
    drain: DrainProcess
    spare_jars: list[str]
    body: Path

    @property
    def redis_pid(self) -> int:
        """The Redis server's pid."""
        return self.redis_server.process.pid if self.redis_server.process else 0

    @property
    def mongodb_pid(self) -> int:
        """The MongoDB-wire server's pid."""
        return self.mongodb.process.pid if self.mongodb.process else 0

    def load(self, jars: Path | None, *, body: bool = False, pace_ms: int | None = None) -> WrkLoad:
        """The wrk load: ``jars`` replayed (``None``: no cookies, new visitors), a track body or none."""
        return WrkLoad(cookies=jars, body=self.body if body else None, connections=self.opts.connections,
                       pace_ms=pace_ms)

    def sample(self, server: AppServer, path: str, load: WrkLoad, seconds: float | None = None) -> Sample:
        """One wrk run against ``server``, with its workers' and Redis's CPU per request."""
        workers = server.worker_pids()
        worker0, redis0 = cpu_seconds(workers), cpu_seconds([self.redis_pid])
        result = run_wrk(server.url + path, load, seconds or self.opts.seconds)
        count = max(result.requests, 1)
        return Sample(result, (cpu_seconds(workers) - worker0) * 1e6 / count,
                      (cpu_seconds([self.redis_pid]) - redis0) * 1e6 / count)


def _started(stack: contextlib.ExitStack, server: AppServer) -> AppServer:
    stack.callback(server.stop)
    server.start()
    return server


def _drain_visits(settings: Settings) -> None:
    """Write the queued visits to MongoDB (so the track rounds' page views have sessions)."""
    drain_client, db = redis_client(settings, for_drain=True), mongo_database(settings)
    try:
        Drain(drain_client, db).drain_all()
    finally:
        drain_client.close()
        db.client.close()


@contextlib.contextmanager
def start(opts: Options) -> Iterator[Bench]:
    """Start the stores and what ``opts.parts`` need; pre-create the visitors; stop it all at the end.

    :raises RuntimeError: a server did not start, or the wrapped app set no cookies.
    """
    with contextlib.ExitStack() as stack:
        redis_server = start_redis(None)
        stack.callback(redis_server.stop)
        mongodb = start_mongodb(None)
        stack.callback(mongodb.stop)
        env = benchmark_env(redis_server.url, mongodb.url, secrets.token_urlsafe(32))
        os.environ.update({k: v for k, v in env.items() if k.startswith("FOOTFALL_")})  # the in-process calls
        wsgi, asgi, spare = None, None, []
        if opts.parts - {"asgi"}:
            servers = [_started(stack, Gunicorn(app, env, opts.out / f"gunicorn-{name}.log", config=opts.gunicorn))
                       for name, app in (("bare", "benchmarks.apps:create_bare()"),
                                         ("footfall", "benchmarks.apps:create_wrapped()"))]
            jars = create_visitors(opts.visitors + 2 * ROUND_TRIP_REQUESTS + 1)
            spare = jars[opts.visitors:]
            wsgi = Pair("WSGI", f"Flask under gunicorn ({opts.gunicorn.describe()})", servers[0], servers[1],
                        write_jars(jars[:opts.visitors], opts.out / "jars-wsgi.txt"))
            if "drain" in opts.parts:
                _drain_visits(Settings.from_env())
        if "asgi" in opts.parts:  # after the drain above: the ASGI visits stay queued, discarded later
            servers = [_started(stack, Uvicorn(app, env, opts.out / f"uvicorn-{name}.log", config=opts.uvicorn))
                       for name, app in (("bare", "benchmarks.apps:create_bare_asgi"),
                                         ("footfall", "benchmarks.apps:create_wrapped_asgi"))]
            jars = create_visitors_over_http(servers[1].url, opts.visitors)
            asgi = Pair("ASGI", f"Starlette under uvicorn ({opts.uvicorn.describe()})", servers[0], servers[1],
                        write_jars(jars, opts.out / "jars-asgi.txt"))
        drain = DrainProcess(env, opts.out / "drain.log")
        stack.callback(drain.stop)
        body = opts.out / "track.json"
        body.write_text(json.dumps(TRACK_BODY))
        yield Bench(opts, redis_server, mongodb, wsgi, asgi, drain, spare, body)
