"""The measuring phases of a run, each on a :class:`~benchmarks.bench.Bench` that is already started.

- :func:`page_rounds` / :func:`paced_rounds`: one app pair (WSGI or ASGI), saturated then at a held
  rate, bare and footfall alternating with the order flipped every round;
- :func:`track_rounds`, :func:`drain_phase`, :func:`lag_phase`: the track endpoint, the drain on its
  backlog, and the backlog and lag with the drain running (WSGI pair);
- :func:`page_profiles`: py-spy on the serving process of a pair under load.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import redis

from benchmarks.bench import Bench, Pair
from benchmarks.drain_load import DrainResult, LagResult, clear_backlog, lag_run, measure_drain
from benchmarks.profiling import Profile, read_profile, start_py_spy
from benchmarks.report import Rounds, Sample, median_rate
from benchmarks.servers import AppServer, cpu_seconds
from benchmarks.wrk import run_wrk
from footfall.settings import Settings
from footfall.stores.connect import mongo_database

__all__ = ["page_rounds", "paced_rounds", "track_rounds", "drain_phase", "lag_phase", "page_profiles"]

def _alternate(pair: Pair, round_index: int) -> list[tuple[str, AppServer]]:
    apps: list[tuple[str, AppServer]] = [("bare", pair.bare), ("footfall", pair.wrapped)]
    return apps if round_index % 2 == 0 else apps[::-1]


def page_rounds(bench: Bench, pair: Pair) -> Rounds:
    """Saturated ``GET /``, same-session (the pair's jars replayed) and new-visitor (no cookies).

    :return: ``(traffic, app)`` → one sample per round; ``app`` is ``bare`` or ``footfall``.
    """
    loads = {"same-session": bench.load(pair.jars), "new-visitor": bench.load(None)}
    for load in loads.values():  # warm-up: imports, connections, the script loaded
        for server in (pair.bare, pair.wrapped):
            run_wrk(server.url + "/", load, 1)
    results: Rounds = {}
    for r in range(bench.opts.rounds):
        for traffic, load in loads.items():
            for app, server in _alternate(pair, r):
                results.setdefault((traffic, app), []).append(bench.sample(server, "/", load))
    return results


def paced_rounds(bench: Bench, pair: Pair, pages: Rounds) -> Rounds:
    """``GET /`` at a held rate, half of footfall's saturated rate in ``pages``, for the added p99."""
    results: Rounds = {}
    for traffic, jars in (("same-session", pair.jars), ("new-visitor", None)):
        rate = median_rate(pages[(traffic, "footfall")]) / 2
        load = bench.load(jars, pace_ms=max(1, round(bench.opts.connections * 1000 / rate)))
        for r in range(bench.opts.rounds):
            for app, server in _alternate(pair, r):
                results.setdefault((traffic, app), []).append(bench.sample(server, "/", load))
    return results


def track_rounds(bench: Bench, pair: Pair) -> tuple[list[Sample], list[Sample]]:
    """``POST /analytics/track`` (drain stopped) alternating with the bare app's same-session GET.

    :return: (track samples, bare samples), one per round each.
    """
    track_load, bare_load = bench.load(pair.jars, body=True), bench.load(pair.jars)
    run_wrk(pair.wrapped.url + "/analytics/track", track_load, 1)
    track: list[Sample] = []
    bare: list[Sample] = []
    for r in range(bench.opts.rounds):
        for app, server in _alternate(pair, r):
            if app == "bare":
                bare.append(bench.sample(server, "/", bare_load))
            else:
                track.append(bench.sample(server, "/analytics/track", track_load))
    return track, bare


def drain_phase(bench: Bench, client: redis.Redis) -> tuple[DrainResult, list[Profile]]:
    """Start ``footfall drain`` on the track rounds' backlog; time it; profile it and the MongoDB server."""
    pids = {"mongodb": bench.mongodb_pid, "redis": bench.redis_pid}
    window = 4 * bench.opts.seconds
    spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []

    def start() -> None:
        bench.drain.start()
        pids["drain"] = bench.drain.pid

    def start_profilers() -> None:
        if not bench.opts.profile:
            return
        for name, pid in (("drain (footfall drain)", bench.drain.pid),
                          ("MongoDB-wire server (secantusd-py)", bench.mongodb_pid)):
            path = bench.opts.out / f"profile-{pid}.txt"
            spies.append((name, path, start_py_spy(pid, window, path)))

    pids["drain"] = 0
    result = measure_drain(client, start, pids, window, cpu_seconds, on_window=start_profilers)
    profiles: list[Profile] = []
    for name, path, spy in spies:
        spy.wait(window + 30)
        summary = read_profile(path, f"{name}, during the drain window")
        if summary is not None:
            profiles.append(summary)
    return result, profiles


def lag_phase(bench: Bench, pair: Pair, client: redis.Redis, ingest: float, drain_rate: float,
              probe_jar: str) -> list[LagResult]:
    """Hold 80 % of the ingest rate, then 80 % of the drain's rate, with the drain running."""
    db = mongo_database(Settings(mongodb_uri=bench.mongodb.url))
    seconds = 3 * bench.opts.seconds
    cpu_pids = {"worker": pair.wrapped.worker_pids()[0], "drain": bench.drain.pid, "mongodb": bench.mongodb_pid,
                "redis": bench.redis_pid}
    runs = [("80 % of ingest", 0.8 * ingest), ("80 % of the drain's rate", 0.8 * drain_rate)]
    results = []
    try:
        for label, rate in runs:
            if rate < 1:  # nothing was ingested or drained: there is no rate to hold
                continue
            load = bench.load(pair.jars, body=True)
            results.append(lag_run(label=label, url=pair.wrapped.url + "/analytics/track", base_url=pair.wrapped.url,
                                   load=replace(load, connections=max(16, load.connections)), rate=rate,
                                   seconds=seconds, recovery=seconds, client=client, db=db,
                                   probe_jar=probe_jar, cpu_pids=cpu_pids, cpu=cpu_seconds))
            clear_backlog(client)
    finally:
        db.client.close()
    return results


def page_profiles(bench: Bench, pair: Pair, runs: list[tuple[str, bool]], *, nonblocking: bool = True) -> list[Profile]:
    """py-spy on the pair's first serving process while wrk drives it.

    :param runs: ``(app, cookies)`` pairs: ``app`` is ``bare`` or ``footfall``; ``cookies`` replays
        the jars (same-session traffic) or sends none (new visitors).
    :param nonblocking: py-spy's ``--nonblocking`` (see :func:`~benchmarks.profiling.start_py_spy`).
    """
    profiles = []
    for app, cookies in runs:
        server = pair.bare if app == "bare" else pair.wrapped
        pid = server.worker_pids()[0]
        traffic = "same-session" if cookies else "new-visitor"
        path = bench.opts.out / f"profile-{pair.name.lower()}-{app}-{traffic}.txt"
        spy = start_py_spy(pid, bench.opts.seconds, path, nonblocking=nonblocking)
        run_wrk(server.url + "/", bench.load(pair.jars if cookies else None), bench.opts.seconds + 1)
        spy.wait(bench.opts.seconds + 30)
        mode = "" if nonblocking else " (py-spy pausing the process for each sample)"
        profile = read_profile(path, f"{pair.name}, {'bare app' if app == 'bare' else 'footfall'} worker, "
                                     f"{traffic} traffic{mode}")
        if profile is not None:
            profiles.append(profile)
    return profiles
