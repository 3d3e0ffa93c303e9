"""Redis round trips per request, counted by Redis itself (``MONITOR``).

``MONITOR`` shows every command a client sent (one line each, with the client's address) and every
command a Lua script ran (client ``lua``). So the commands a request kind costs on the wire, the
round trips, are told apart from the work done inside the one script call. ``INFO commandstats``
counts both together, which is why it is not used here.

The requests go through the running gunicorn app over one keep-alive connection, after a warm-up of
each kind (the script is loaded and the Redis connections opened), with no drain running.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace

import redis
from pymongo.database import Database

from benchmarks.visitors import BROWSER_UA, CRAWLER_UA
from footfall.stores.redis_sessions import session_key

__all__ = ["RoundTrips", "count_round_trips"]

_MARK = "footfall-benchmark-mark"


@dataclass(frozen=True)
class RoundTrips:
    """What one request kind cost Redis, per request.

    :ivar wire: commands sent over the wire per request, by name (each one a round trip here:
        footfall pipelines nothing on the request path).
    :ivar in_script: commands the Lua script ran per request, by name.
    :ivar mongodb: requests the MongoDB-wire server received per request (its ``serverStatus``
        ``network.numRequests``; pymongo's heartbeats, one per client every 10 s, may add a little).
    """

    kind: str
    requests: int
    wire: dict[str, float]
    in_script: dict[str, float]
    mongodb: float = 0.0

    @property
    def round_trips(self) -> float:
        """Wire commands per request."""
        return sum(self.wire.values())


class _Monitor(threading.Thread):
    """Collects MONITOR lines until it sees the closing mark (or its socket times out)."""

    def __init__(self, client: redis.Redis) -> None:
        super().__init__(name="benchmark-monitor", daemon=True)
        self.client = client
        self.lines: list[dict[str, str]] = []
        self.ready = threading.Event()

    def run(self) -> None:
        with self.client.monitor() as monitor:
            self.ready.set()
            for line in monitor.listen():  # bounded: ends at the closing mark or the socket timeout
                command = line["command"]
                self.lines.append({"type": line["client_type"], "command": command})
                if command == f"ECHO {_MARK} done":
                    return


def _request(conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str],
             body: bytes | None = None) -> int:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def count_round_trips(base_url: str, redis_url: str, db: Database, jars: list[str],
                      per_kind: int = 200) -> list[RoundTrips]:
    """Send ``per_kind`` requests of each kind to the wrapped app and count Redis's commands (and
    the requests MongoDB received meanwhile).

    :param base_url: the wrapped app, ``http://127.0.0.1:PORT``.
    :param redis_url: footfall's Redis.
    :param db: footfall's MongoDB database.
    :param jars: at least ``2 * per_kind`` cookie jars of visitors no other load uses (the expired
        kind deletes their sessions).
    :return: one :class:`RoundTrips` per request kind.
    :raises RuntimeError: too few jars, or a request failed.
    """
    if len(jars) < 2 * per_kind:
        raise RuntimeError(f"need {2 * per_kind} spare visitors, got {len(jars)}")
    same_jars, expired_jars = jars[:per_kind], jars[per_kind:2 * per_kind]
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    browser = {"User-Agent": BROWSER_UA}
    track_body = json.dumps({"eventType": "page_view", "path": "/bench/round-trips", "title": "t"}).encode()

    def track(i: int) -> int:
        body = json.dumps({"eventType": "page_view", "path": "/bench/round-trips",
                           "event_id": str(uuid.uuid4())}).encode()
        return _request(conn, "POST", "/analytics/track", {**browser, "Cookie": same_jars[i],
                                                           "Content-Type": "application/json"}, body)

    kinds: list[tuple[str, Callable[[int], int]]] = [
        ("same-session page", lambda i: _request(conn, "GET", "/", {**browser, "Cookie": same_jars[i]})),
        ("new-visitor page", lambda i: _request(conn, "GET", "/", browser)),
        ("expired-session page", lambda i: _request(conn, "GET", "/", {**browser, "Cookie": expired_jars[i]})),
        ("track page_view (same session)", track),
        ("excluded path (/static/)", lambda i: _request(conn, "GET", "/static/app.css", browser)),
        ("crawler (Googlebot UA)", lambda i: _request(conn, "GET", "/", {"User-Agent": CRAWLER_UA})),
    ]
    client = redis.Redis.from_url(redis_url, socket_timeout=30)
    try:
        for _, send in kinds:  # warm-up: script loaded, connections open
            send(0)
        _request(conn, "POST", "/analytics/track", {**browser, "Content-Type": "application/json"}, track_body)
        client.delete(*[session_key(_session_id(jar)) for jar in expired_jars])
        monitor = _Monitor(redis.Redis.from_url(redis_url, socket_timeout=30))
        monitor.start()
        monitor.ready.wait(10)
        mongodb: dict[str, float] = {}
        for name, send in kinds:
            client.echo(f"{_MARK} {name}")
            before = _mongodb_requests(db)
            for i in range(per_kind):
                status = send(i)
                if status >= 500:
                    raise RuntimeError(f"{name}: the app answered {status}")
            mongodb[name] = (_mongodb_requests(db) - before - 1) / per_kind  # - 1: the second serverStatus
        client.echo(f"{_MARK} done")
        monitor.join(30)
    finally:
        conn.close()
        client.close()
    tallies = _tally(monitor.lines, [name for name, _ in kinds], per_kind)
    return [replace(rt, mongodb=mongodb[rt.kind]) for rt in tallies]


def _mongodb_requests(db: Database) -> int:
    return int(db.client.admin.command("serverStatus")["network"]["numRequests"])


def _session_id(jar: str) -> str:
    """The session id inside a jar's signed ``session`` cookie (``<id>.<signature>``)."""
    cookies = dict(part.split("=", 1) for part in jar.split("; "))
    return cookies["session"].rsplit(".", 1)[0]


def _tally(lines: list[dict[str, str]], names: list[str], per_kind: int) -> list[RoundTrips]:
    counts: dict[str, tuple[Counter[str], Counter[str]]] = {}
    current: str | None = None
    for line in lines:
        command = line["command"]
        if command.startswith(f"ECHO {_MARK} "):
            current = command.removeprefix(f"ECHO {_MARK} ")
            counts.setdefault(current, (Counter(), Counter()))
            continue
        if current is None or current == "done":
            continue
        wire, in_script = counts[current]
        (in_script if line["type"] == "lua" else wire)[command.split(" ", 1)[0].upper()] += 1
    result = []
    for name in names:
        wire, in_script = counts.get(name, (Counter(), Counter()))
        result.append(RoundTrips(name, per_kind, {k: v / per_kind for k, v in sorted(wire.items())},
                                 {k: v / per_kind for k, v in sorted(in_script.items())}))
    return result
