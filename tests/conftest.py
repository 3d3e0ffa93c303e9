"""Shared fixtures: real Redis and MongoDB-wire servers over TCP, never fakes.

Once per test session a ``redis-server`` and a SecantusDB ``secantusd-py`` daemon are started on
free loopback ports (``footfall.embedded``), unless ``FOOTFALL_TEST_REDIS_URL`` /
``FOOTFALL_TEST_MONGODB_URI`` point at servers to use instead (a real Redis 7 and MongoDB 7 run the
same suite that way). Each test gets an empty Redis database and its own MongoDB database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from pymongo import MongoClient
from pymongo.database import Database

from footfall.embedded import ServerProcess, start_mongodb, start_redis
from footfall.settings import Settings

SHARED_DATA = Path(__file__).resolve().parent / "data"  # real logs and user agents, origin in its README
TEST_SECRET = "test-secret-key-not-for-production"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess | None]:
    """The test session's Redis server process, or ``None`` when ``FOOTFALL_TEST_REDIS_URL`` is set."""
    if os.environ.get("FOOTFALL_TEST_REDIS_URL"):
        yield None
        return
    server = start_redis(None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mongodb_server() -> Iterator[ServerProcess | None]:
    """The test session's MongoDB-wire server, or ``None`` when ``FOOTFALL_TEST_MONGODB_URI`` is set."""
    if os.environ.get("FOOTFALL_TEST_MONGODB_URI"):
        yield None
        return
    server = start_mongodb(None)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: ServerProcess | None) -> str:
    return os.environ.get("FOOTFALL_TEST_REDIS_URL") or redis_server.url  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def mongodb_base_uri(mongodb_server: ServerProcess | None) -> str:
    return os.environ.get("FOOTFALL_TEST_MONGODB_URI") or mongodb_server.url  # type: ignore[union-attr]


def with_database(uri: str, name: str) -> str:
    """``uri`` with its database path replaced by ``name`` (query options kept)."""
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture
def mongodb_uri(mongodb_base_uri: str) -> Iterator[str]:
    """A URI naming a database of this test's own, dropped afterwards."""
    name = f"footfall_test_{uuid.uuid4().hex[:12]}"
    yield with_database(mongodb_base_uri, name)
    client: MongoClient = MongoClient(mongodb_base_uri, serverSelectionTimeoutMS=5000)
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture
def mongo_db(mongodb_uri: str) -> Iterator[Database]:
    """The test's own MongoDB database (timezone-aware client)."""
    client: MongoClient = MongoClient(mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    yield client.get_default_database()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on an emptied Redis database."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def settings(redis_client: redis.Redis, redis_url: str, mongodb_uri: str) -> Settings:
    """Settings on the test's stores, plain-http cookies, an admin token."""
    return Settings(
        secret_key=TEST_SECRET,
        redis_url=redis_url,
        mongodb_uri=mongodb_uri,
        cookie_secure=False,
        admin_token="test-admin-token",
        cors_origins=("https://shop.example",),
        inprocess_drain=False,  # tests drain explicitly with the `drain` fixture
    )


@pytest.fixture
def drain(settings: Settings, mongo_db: Database) -> Iterator[Callable[[], int]]:
    """A function that writes everything queued in Redis to the test's MongoDB database, returning
    how many stream entries it handled (the same :class:`~footfall.drain.Drain` production runs)."""
    from footfall.drain import Drain

    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    worker = Drain(client, mongo_db, consumer="test-drain")
    yield worker.drain_all
    client.close()


class SimulatedClock:
    """A clock tests move by hand: ``clock()`` returns the current UTC instant."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 15, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        from datetime import timedelta

        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock()
