"""Fixtures for the live numbers: footfall's Flask app on the test's real stores, with the simulated
clock (helpers that act as browsers are in ``tests/live/support.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from footfall.analytics_api import create_app
from footfall.live.app import create_asgi_app
from footfall.settings import Settings
from tests.live.streams import ThreadedServer
from tests.live.support import read_stats


@pytest.fixture
def make_app(settings: Settings, clock: Callable[[], Any]) -> Iterator[Callable[..., Flask]]:
    """``make_app(**overrides)``: footfall's Flask app on the ``settings`` fixture (fields overridden)
    and the simulated ``clock``; every app is closed afterwards."""
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        app = create_app(settings.with_overrides(**overrides), clock=clock)
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["footfall"].close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def stats_of() -> Callable[..., dict[str, Any]]:
    """``stats_of(app, site=None)``: ``GET /api/stats`` as the admin (see ``support.read_stats``)."""
    return read_stats


@pytest.fixture
def live_server(settings: Settings, clock: Callable[[], Any]) -> Iterator[Callable[..., ThreadedServer]]:
    """``live_server(heartbeat=15.0, coalesce=1.0, sweep_interval=1.0, **overrides)``: footfall's ASGI
    app (:func:`~footfall.live.app.create_asgi_app`) on the ``settings`` fixture (fields overridden)
    and the simulated clock, served by uvicorn on a free loopback port; stopped afterwards."""
    servers: list[ThreadedServer] = []

    def start(*, heartbeat: float = 15.0, coalesce: float = 1.0, sweep_interval: float = 1.0,
              **overrides: Any) -> ThreadedServer:
        app = create_asgi_app(settings.with_overrides(**overrides), clock=clock, heartbeat=heartbeat,
                              coalesce=coalesce, sweep_interval=sweep_interval)
        server = ThreadedServer(app).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
