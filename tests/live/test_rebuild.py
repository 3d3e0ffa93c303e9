"""Reading the counters is O(1) and never touches MongoDB; a Redis that lost them is rebuilt once
from MongoDB, counting every recorded event once."""

from __future__ import annotations

from collections.abc import Callable

import redis

from footfall.errors import StoreUnavailable
from tests.live.support import AUTH, browser, register, track

DEAD_MONGODB = "mongodb://127.0.0.1:9/footfall?serverSelectionTimeoutMS=300"


def commands(redis_client: redis.Redis) -> dict[str, int]:
    return {name: int(row["calls"]) for name, row in redis_client.info("commandstats").items()}


def delta(redis_client: redis.Redis, action: Callable[[], object]) -> dict[str, int]:
    before = commands(redis_client)
    action()
    after = commands(redis_client)
    return {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0)}


def drain_after_flush(drain: Callable[[], int]) -> int:
    """The drain notices that Redis lost its consumer group once (as in production), then drains."""
    try:
        return drain()
    except StoreUnavailable:
        return drain()


def test_a_read_costs_the_same_commands_whatever_the_number_of_sessions(app, redis_client, stats_of) -> None:
    for _ in range(2):
        register(browser(app))
    stats_of(app)  # the first read seeds the counters (MongoDB is empty)
    few = delta(redis_client, lambda: stats_of(app))
    for _ in range(25):
        register(browser(app))
    many = delta(redis_client, lambda: stats_of(app))
    assert stats_of(app)["totalVisits"] == 27
    assert few == many
    assert set(few) == {"cmdstat_multi", "cmdstat_exec", "cmdstat_hmget", "cmdstat_hget", "cmdstat_scard",
                        "cmdstat_zcount", "cmdstat_hgetall", "cmdstat_info"}


def test_reading_seeded_counters_never_needs_mongodb(make_app, stats_of) -> None:
    app = make_app()
    for _ in range(3):
        register(browser(app))
    seeded = stats_of(app)
    without_mongodb = make_app(mongodb_uri=DEAD_MONGODB)
    assert stats_of(without_mongodb) == seeded


def test_counters_that_need_their_rebuild_say_so_when_mongodb_is_down(make_app, redis_client) -> None:
    app = make_app(mongodb_uri=DEAD_MONGODB)
    register(browser(app))
    response = app.test_client().get("/api/stats", headers=AUTH)
    assert response.status_code == 503
    assert "MongoDB did not answer" in response.get_json()["error"]


def test_a_flushed_redis_is_rebuilt_from_mongodb_once(app, redis_client, drain, clock, stats_of) -> None:
    alice, bob = browser(app), browser(app)
    register(alice)
    track(alice, "/pricing")
    register(bob)
    before = stats_of(app)
    drain()
    redis_client.flushdb()  # Redis loses everything: counters, sessions, the stream
    clock.advance(60)
    rebuilt = stats_of(app)
    assert {k: rebuilt[k] for k in ("totalVisits", "pageViews", "uniqueVisitors", "todayVisits",
                                    "todayUniqueVisitors")} == {
        "totalVisits": 2, "pageViews": 3, "uniqueVisitors": 2, "todayVisits": 2, "todayUniqueVisitors": 2}
    assert rebuilt["activeUsers"] == 0, "activity is not rebuilt: it lived in Redis only"
    assert before["activeUsers"] == 2
    health = app.test_client().get("/analytics/health", headers=AUTH).get_json()
    assert health["live_counters"]["rebuilt_from_mongodb"]["default"]["visits"] == 2
    assert health["live_counters"]["rebuilt_from_mongodb"]["default"]["at"] == "2026-01-15T12:01:00.000Z"
    assert stats_of(app) == rebuilt, "once: the next read does not add MongoDB again"


def test_events_after_the_flush_count_once_though_the_drain_wrote_them_before_the_rebuild(
    app, redis_client, drain, clock, stats_of
) -> None:
    alice = browser(app)
    register(alice)
    register(browser(app))
    drain()
    redis_client.flushdb()
    clock.advance(60)
    register(alice)  # a new session (Redis forgot the old one), the visitor known by its cookie
    register(browser(app))  # a new visitor
    assert drain_after_flush(drain) == 2  # both are in MongoDB before anything reads the counters
    stats = stats_of(app)
    assert (stats["totalVisits"], stats["pageViews"], stats["uniqueVisitors"]) == (4, 4, 3)
    assert (stats["todayVisits"], stats["todayUniqueVisitors"]) == (4, 3)
    register(browser(app))
    assert stats_of(app)["totalVisits"] == 5


def test_an_unknown_site_stays_unknown(app, redis_client, stats_of) -> None:
    assert stats_of(app, "nobody-here")["totalVisits"] == 0
    assert not list(redis_client.scan_iter("footfall:live:nobody-here*")), "no key made for a site never seen"
