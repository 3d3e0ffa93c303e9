"""Fixtures for the live numbers: footfall's Flask app on the test's real stores, with the simulated
clock (helpers that act as browsers are in ``tests/live/support.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from footfall.analytics_api import create_app
from footfall.settings import Settings
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
