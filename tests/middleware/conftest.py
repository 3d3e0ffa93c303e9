"""Fixtures for the middleware suite: one behaviour suite, run against both adapters.

Every test that goes through HTTP takes the ``site`` or ``make_site`` fixture, parametrized over the
adapters (ids ``wsgi`` and ``asgi``): a Flask app behind ``FootfallMiddleware`` and a Starlette app
with the same routes behind ``FootfallASGIMiddleware`` (``tests/middleware/sites.py``), both driven
in-process by ``httpx2`` clients, on the real Redis and MongoDB-wire servers of ``tests/conftest.py``.

The request path only talks to Redis: a tracked request queues what it records on the Redis Stream
``footfall:events``, and a test that looks at MongoDB first calls the shared ``drain`` fixture, which
writes the queue there and returns how many stream entries it handled. Sites are built with
``inprocess_drain=False`` (the ``settings`` fixture) unless a test asks for the background drain.

Test files here have unique names (``test_mw_*.py``), and helpers reach the tests as fixtures, not
imports.
"""

from __future__ import annotations

import functools
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from footfall.embedded import free_port
from footfall.settings import Settings
from tests.middleware.sites import ADAPTERS, SITES, Site

SHARED_DATA = Path(__file__).resolve().parents[1] / "data"
USER_AGENTS = SHARED_DATA / "user-agents"


def parse_set_cookie(header: str) -> tuple[str, str, dict[str, str]]:
    """Split one ``Set-Cookie`` value into ``(name, value, attributes)``; attribute names lower-cased,
    flags (``HttpOnly``, ``Secure``) map to ``""``."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for part in rest:
        key, _, attr_value = part.partition("=")
        attributes[key.strip().lower()] = attr_value.strip()
    return name, value, attributes


def set_cookies(response: Any) -> dict[str, tuple[str, dict[str, str]]]:
    """A response's ``Set-Cookie`` headers, name -> ``(value, attributes)``."""
    parsed = (parse_set_cookie(value) for value in response.headers.get_list("set-cookie"))
    return {name: (value, attributes) for name, value, attributes in parsed}


@pytest.fixture
def build_site(settings: Settings, clock: Callable[[], Any]) -> Iterator[Callable[..., Site]]:
    """``build_site(adapter, settings_=None, *, tracker=None, **overrides)``: a :class:`Site` of either
    adapter (``"wsgi"`` or ``"asgi"``); keyword arguments override fields of the ``settings`` fixture,
    or pass ``settings_`` whole, or a ready tracker (``Tracker`` for WSGI, ``AsyncTracker`` for ASGI;
    its settings are then the site's). Every site is closed afterwards (clients closed, background
    drain stopped, store clients closed, ASGI lifespan shut down)."""
    sites: list[Site] = []

    def build(adapter: str, settings_: Settings | None = None, *, tracker: Any = None, **overrides: Any) -> Site:
        site_settings = tracker.settings if tracker else (settings_ or settings).with_overrides(**overrides)
        site = SITES[adapter](site_settings, tracker=tracker, clock=clock)
        sites.append(site)
        return site

    yield build
    for site in reversed(sites):
        site.close()


@pytest.fixture(params=ADAPTERS)
def adapter(request: pytest.FixtureRequest) -> str:
    """The adapter under test: ``"wsgi"`` (Flask, ``FootfallMiddleware``) or ``"asgi"`` (Starlette,
    ``FootfallASGIMiddleware``)."""
    return request.param


@pytest.fixture
def make_site(build_site: Callable[..., Site], adapter: str) -> Callable[..., Site]:
    """Build a :class:`Site` of the adapter under test; arguments as for ``build_site`` after the
    adapter. Every test that takes it runs once per adapter."""
    return functools.partial(build_site, adapter)


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    """The default site on the ``settings`` fixture, for the adapter under test."""
    return make_site()


@pytest.fixture
def asgi_site(build_site: Callable[..., Site]) -> Site:
    """An ASGI site on the ``settings`` fixture, for tests of what only ASGI has (streaming bodies,
    WebSockets, lifespan)."""
    return build_site("asgi")


@pytest.fixture
def cookies_of() -> Callable[[Any], dict[str, tuple[str, dict[str, str]]]]:
    """``cookies_of(response)``: the response's ``Set-Cookie`` headers, name -> ``(value, attributes)``."""
    return set_cookies


@pytest.fixture(scope="session")
def user_agents_dir() -> Path:
    """``shared/data/user-agents``: the isbot fixtures and monperrus/crawler-user-agents."""
    return USER_AGENTS


@pytest.fixture
def queued(redis_client: redis.Redis) -> Callable[[], int]:
    """``queued()``: how many entries wait on the ``footfall:events`` stream right now."""
    return lambda: int(redis_client.xlen("footfall:events"))


@pytest.fixture
def command_calls(redis_client: redis.Redis) -> Callable[[], dict[str, int]]:
    """``command_calls()``: ``INFO commandstats`` as ``{"cmdstat_<name>": calls}``. Each call is itself
    one ``INFO`` command, counted in the next snapshot."""

    def snapshot() -> dict[str, int]:
        return {name: int(stats["calls"]) for name, stats in redis_client.info("commandstats").items()}

    return snapshot


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned) or ``timeout`` seconds pass
    (the last falsy value is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def poll() -> Callable[..., Any]:
    """``poll(predicate, timeout)``: see :func:`wait_until`."""
    return wait_until


class _Pipe(socketserver.BaseRequestHandler):
    """Copies bytes between one client connection and a fresh connection to the real Redis."""

    server: _LinkServer

    def handle(self) -> None:
        link = self.server.link
        try:
            upstream = socket.create_connection(link.upstream, timeout=2)
        except OSError:
            return
        pair = (self.request, upstream)
        link.register(pair)
        try:
            while not link.cut.is_set():
                readable, _, _ = select.select(pair, [], [], 0.2)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is self.request else self.request).sendall(data)
        except OSError:
            return
        finally:
            link.unregister(pair)
            upstream.close()


class _LinkServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    link: RedisLink


class RedisLink:
    """A TCP path to the real test Redis that a test can cut and restore, on one fixed port.

    Down means what a crashed or unreachable Redis means to a client: the connections it had are
    closed and new ones are refused. Nothing about the store is faked: up, every byte goes to the
    real server and back.
    """

    def __init__(self, redis_url: str) -> None:
        kwargs = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs
        self.upstream = (kwargs.get("host", "127.0.0.1"), int(kwargs.get("port", 6379)))
        self.db = int(kwargs.get("db", 0))
        self.port = free_port()
        self.cut = threading.Event()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._server: _LinkServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/{self.db}"

    def register(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._pairs.add(pair)

    def unregister(self, pair: tuple[socket.socket, socket.socket]) -> None:
        with self._lock:
            self._pairs.discard(pair)

    def up(self) -> None:
        """Listen (again) on the link's port and forward every connection to the real Redis."""
        if self._server is not None:
            return
        self.cut.clear()
        server = _LinkServer(("127.0.0.1", self.port), _Pipe)
        server.link = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="redis-link", daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Stop listening (new connections are refused) and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self.cut.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        wait_until(lambda: not self._pairs, timeout=2)
        if self._thread is not None:
            self._thread.join(2)


@pytest.fixture
def redis_link(redis_url: str, redis_client: redis.Redis) -> Iterator[RedisLink]:
    """A :class:`RedisLink` to the test's (emptied) Redis database, up; taken down afterwards."""
    link = RedisLink(redis_url)
    link.up()
    yield link
    link.down()
