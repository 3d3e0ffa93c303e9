"""Client construction for Redis and MongoDB, with the timeouts footfall's fail-open rules need."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from footfall.errors import ConfigurationError
from footfall.settings import Settings

__all__ = ["redis_client", "mongo_database", "async_redis_client", "async_mongo_database", "DEFAULT_DATABASE"]

DEFAULT_DATABASE = "footfall"
MONGO_SERVER_SELECTION_TIMEOUT_MS = 2000


def redis_client(settings: Settings, *, for_drain: bool = False) -> redis.Redis:
    """A pooled Redis client for ``FOOTFALL_REDIS_URL``.

    The request path's client gives up fast: connect and socket timeouts are
    ``FOOTFALL_REDIS_SOCKET_TIMEOUT`` seconds (default 0.1) and nothing is retried, so a dead Redis
    costs a request at most about that long (redis-py's defaults, 5 s timeouts and retries, would
    stall the wrapped app). The drain's client (``for_drain=True``) waits longer, since it blocks on
    the stream for up to a second, and retries three times with exponential backoff. The hiredis
    parser is used when installed (``redis[hiredis]``).

    :raises ConfigurationError: ``FOOTFALL_REDIS_URL`` is not set.
    """
    if not settings.redis_url:
        raise ConfigurationError("FOOTFALL_REDIS_URL is not set")
    if for_drain:
        return redis.Redis.from_url(
            settings.redis_url, socket_timeout=10.0, socket_connect_timeout=2.0,
            retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3), health_check_interval=30,
        )
    return redis.Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 0), **_request_path_options(settings))


def _request_path_options(settings: Settings) -> dict[str, Any]:
    """Socket options of the request path's Redis clients, sync and async alike."""
    return {"socket_timeout": settings.redis_socket_timeout, "socket_connect_timeout": settings.redis_socket_timeout,
            "health_check_interval": 30}


def _mongo_options(client_options: dict[str, Any]) -> dict[str, Any]:
    """MongoDB client options: timezone-aware, 2 s server selection, then the caller's."""
    return {"tz_aware": True, "serverSelectionTimeoutMS": MONGO_SERVER_SELECTION_TIMEOUT_MS, **client_options}


def mongo_database(settings: Settings, **client_options: Any) -> Database:
    """The database named in ``FOOTFALL_MONGODB_URI`` (``footfall`` when the URI names none).

    The client is timezone-aware (datetimes come back as UTC-aware) and stops looking for a server
    after 2 s, so a request or a command waits at most that long for a MongoDB that is down.

    :raises ConfigurationError: ``FOOTFALL_MONGODB_URI`` is not set.
    """
    if not settings.mongodb_uri:
        raise ConfigurationError("FOOTFALL_MONGODB_URI is not set")
    client: MongoClient = MongoClient(settings.mongodb_uri, **_mongo_options(client_options))
    return client.get_database(client.get_default_database(DEFAULT_DATABASE).name)


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio twin of :func:`redis_client` for the request path (same timeouts, no retries).

    :raises ConfigurationError: ``FOOTFALL_REDIS_URL`` is not set.
    """
    if not settings.redis_url:
        raise ConfigurationError("FOOTFALL_REDIS_URL is not set")
    return redis.asyncio.Redis.from_url(settings.redis_url, retry=AsyncRetry(NoBackoff(), 0),
                                        **_request_path_options(settings))


def async_mongo_database(settings: Settings, **client_options: Any) -> AsyncDatabase:
    """The asyncio twin of :func:`mongo_database` (pymongo's ``AsyncMongoClient``).

    :raises ConfigurationError: ``FOOTFALL_MONGODB_URI`` is not set.
    """
    if not settings.mongodb_uri:
        raise ConfigurationError("FOOTFALL_MONGODB_URI is not set")
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri, **_mongo_options(client_options))
    return client.get_database(client.get_default_database(DEFAULT_DATABASE).name)
