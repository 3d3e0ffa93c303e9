"""Fixtures for the middleware suite: a small Flask site wrapped by the real middleware, on the real
Redis and MongoDB-wire servers of ``tests/conftest.py``.

The request path only talks to Redis: a tracked request queues what it records on the Redis Stream
``footfall:events``, and a test that looks at MongoDB first calls the shared ``drain`` fixture, which
writes the queue there and returns how many stream entries it handled. Sites are built with
``inprocess_drain=False`` (the ``settings`` fixture) unless a test asks for the background drain.

Test files here have unique names (``test_mw_*.py``), and helpers reach the tests as fixtures, not
imports.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient

from footfall.embedded import free_port
from footfall.middleware.core import Visit
from footfall.middleware.tracker import Tracker
from footfall.middleware.wsgi import ENVIRON_KEY, FootfallMiddleware
from footfall.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
USER_AGENTS = SHARED_DATA / "user-agents"

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
TRACK_PATH = "/analytics/track"

MISSING = object()  # what the app saw when ``environ`` had no ``footfall.visit`` key at all


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


def build_flask_app() -> Flask:
    """The wrapped application: HTML pages, a JSON endpoint, the excluded paths, and ``/whoami``
    which answers with what the middleware published at ``environ["footfall.visit"]``."""
    app = Flask("footfall_mw_tests", static_folder=None)
    app.config["SEEN"] = []  # environ["footfall.visit"] (or MISSING) for each request the app served

    @app.before_request
    def remember_visit() -> None:
        app.config["SEEN"].append(request.environ.get(ENVIRON_KEY, MISSING))

    @app.get("/")
    def home() -> str:
        return "<!doctype html><title>home</title><p>home</p>"

    @app.route("/page/<name>", methods=["GET", "POST"])
    def page(name: str) -> str:
        return f"<!doctype html><title>{name}</title><p>{name}</p>"

    @app.get("/api/data")
    def api_data() -> Response:
        return jsonify(ok=True)

    @app.get("/static/<path:name>")
    def static_file(name: str) -> Response:
        return Response("body { color: black }", mimetype="text/css")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(b"\x00\x00\x01\x00", mimetype="image/x-icon")

    @app.get("/robots.txt")
    def robots() -> Response:
        return Response("User-agent: *\nDisallow:\n", mimetype="text/plain")

    @app.get("/whoami")
    def whoami() -> Response:
        visit = request.environ.get(ENVIRON_KEY, MISSING)
        if visit is MISSING:
            return jsonify(visit="missing")
        if visit is None:
            return jsonify(visit=None)
        return jsonify(
            visitor_id=visit.visitor_id, session_id=visit.session_id,
            is_new_visitor=visit.is_new_visitor, is_new_session=visit.is_new_session,
        )

    return app


@dataclass
class Site:
    """A Flask app wrapped as ``app.wsgi_app = FootfallMiddleware(app.wsgi_app, settings, clock=clock)``
    and a test client with a browser User-Agent and a cookie jar."""

    app: Flask
    middleware: FootfallMiddleware
    client: FlaskClient
    settings: Settings

    @property
    def seen(self) -> list[Any]:
        """What the wrapped app found at ``environ["footfall.visit"]``, one entry per request it served."""
        return self.app.config["SEEN"]

    @property
    def last_visit(self) -> Visit:
        visit = self.seen[-1]
        assert isinstance(visit, Visit), f"the app saw {visit!r}, not a Visit"
        return visit

    def new_client(self, user_agent: str | None = FIREFOX_UA, *, use_cookies: bool = True) -> FlaskClient:
        """Another browser (its own cookie jar); ``user_agent=None`` sends no User-Agent at all.

        With ``use_cookies=False`` there is no jar and a ``Cookie`` header passed to a request is sent
        as is (Werkzeug's client replaces it with the jar's otherwise).
        """
        client = self.app.test_client(use_cookies=use_cookies)
        if user_agent is None:
            client.environ_base.pop("HTTP_USER_AGENT", None)
        else:
            client.environ_base["HTTP_USER_AGENT"] = user_agent
        return client

    def jar(self, client: FlaskClient | None = None) -> dict[str, str]:
        """The footfall cookies in a client's jar, name -> raw (signed) value."""
        client = client or self.client
        names = (self.settings.session_cookie_name, self.settings.visitor_cookie_name)
        found = {name: client.get_cookie(name) for name in names}
        return {name: cookie.value for name, cookie in found.items() if cookie is not None}

    def track(self, body: Any, client: FlaskClient | None = None, **kwargs: Any) -> Any:
        """``POST`` to the track endpoint; ``body`` is JSON-encoded unless it is ``bytes``."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        kwargs.setdefault("content_type", "application/json")
        return (client or self.client).post(TRACK_PATH, data=data, **kwargs)

    def close(self) -> None:
        """Stop the site's background drain (if one started) and close its Redis client."""
        self.middleware.close()


def set_cookies(response: Any) -> dict[str, tuple[str, dict[str, str]]]:
    """A response's ``Set-Cookie`` headers, name -> ``(value, attributes)``."""
    parsed = (parse_set_cookie(value) for value in response.headers.getlist("Set-Cookie"))
    return {name: (value, attributes) for name, value, attributes in parsed}


@pytest.fixture
def make_site(settings: Settings, clock: Callable[[], Any]) -> Iterator[Callable[..., Site]]:
    """Build a :class:`Site`; keyword arguments override fields of the ``settings`` fixture, or pass
    ``settings_`` whole, or a ready ``tracker`` (its settings are then the site's). Every site is
    closed afterwards (``FootfallMiddleware.close()``: background drain stopped, Redis client closed)."""
    sites: list[Site] = []

    def build(settings_: Settings | None = None, *, tracker: Tracker | None = None, **overrides: Any) -> Site:
        site_settings = tracker.settings if tracker else (settings_ or settings).with_overrides(**overrides)
        app = build_flask_app()
        middleware = FootfallMiddleware(app.wsgi_app, site_settings, tracker=tracker, clock=clock)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        client = app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = FIREFOX_UA
        site = Site(app, middleware, client, site_settings)
        sites.append(site)
        return site

    yield build
    for site in sites:
        site.close()


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    """The default site on the ``settings`` fixture."""
    return make_site()


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
