"""The live counters kept by the track script: visits, page views, unique visitors, today, active
visitors, countries; on the real Redis, driven through footfall's own endpoints with a simulated clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from footfall.live.counters import (
    CounterSnapshot,
    build_stats,
    day_bounds,
    day_ttl_ms,
    live_keys,
    location_label,
    parse_location,
    track_keys_and_args,
)
from footfall.stores.redis_sessions import session_key
from tests.live.support import browser, register, track

NEW_YORK = ZoneInfo("America/New_York")


def expire_sessions(redis_client: redis.Redis) -> None:
    """What Redis does when the session TTL runs out (the clock of the tests is simulated)."""
    for key in redis_client.scan_iter(session_key("*")):
        redis_client.delete(key)


def test_stats_object_has_the_seed_shape_and_iso_time() -> None:
    snapshot = CounterSnapshot(visits=4001, page_views=9000, unique_visitors=3821, today_visits=145,
                               today_unique_visitors=120, active=3, countries={"BD": 2, "IN": 5, "US": 2},
                               names={"BD": "Bangladesh", "IN": "India"}, seq=7, updated_ms=1768478400123,
                               since_ms=1768400000000, seeded=True)
    stats = build_stats(snapshot, now=datetime(2026, 1, 15, 13, 0, tzinfo=UTC))
    assert stats == {
        "totalVisits": 4001, "todayVisits": 145, "uniqueVisitors": 3821, "todayUniqueVisitors": 120,
        "activeUsers": 3, "pageViews": 9000,
        "locations": {"India, IN": {"count": 5}, "Bangladesh, BD": {"count": 2}, "US, US": {"count": 2}},
        "lastUpdated": "2026-01-15T12:00:00.123Z",
    }
    assert list(stats["locations"]) == ["India, IN", "Bangladesh, BD", "US, US"], "most visits first"
    assert snapshot.event_id == "1768400000000-7"


def test_nothing_changed_yet_reports_the_read_time() -> None:
    stats = build_stats(CounterSnapshot(), now=datetime(2026, 1, 15, 12, 0, tzinfo=UTC))
    assert stats["lastUpdated"] == "2026-01-15T12:00:00.000Z"
    assert stats["locations"] == {} and stats["totalVisits"] == 0


@pytest.mark.parametrize(
    ("label", "parsed"),
    [
        pytest.param("Bangladesh, BD", ("BD", "Bangladesh"), id="name and code"),
        pytest.param("Korea, Republic of, kr", ("KR", "Korea, Republic of"), id="comma in the name"),
        pytest.param("", ("", ""), id="unknown"),
        pytest.param("Dhaka", ("", ""), id="no code"),
        pytest.param("Somewhere, XYZ", ("", ""), id="not a two-letter code"),
    ],
)
def test_location_labels_split_into_code_and_name(label: str, parsed: tuple[str, str]) -> None:
    assert parse_location(label) == parsed
    if parsed[0]:
        assert location_label(parsed[0], {parsed[0]: parsed[1]}) == f"{parsed[1]}, {parsed[0]}"


def test_local_day_bounds_and_day_key_expiry_in_a_non_utc_zone() -> None:
    start, end = day_bounds(date(2026, 3, 8), NEW_YORK)  # the day clocks go forward: 23 hours
    assert (start, end) == (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC))
    late = datetime(2026, 3, 9, 3, 30, tzinfo=UTC)  # 23:30 on March 8 in New York
    assert day_ttl_ms(late, NEW_YORK) == (24 * 3600 + 1800) * 1000, "until one day after the local day ends"
    keys, args = track_keys_and_args("blog", "v1", late, window=300, zone=NEW_YORK)
    assert keys[2] == live_keys("blog", date(2026, 3, 8)).day
    assert args[2] == "2026-03-08"


def test_visits_page_views_and_unique_visitors_follow_the_three_cases(app, redis_client, stats_of) -> None:
    alice, bob = browser(app), browser(app)
    register(alice)  # new visitor: a visit and a page view
    assert stats_of(app)["totalVisits"] == 1
    track(alice, "/pricing")  # same session: a page view only
    expire_sessions(redis_client)
    track(alice, "/back")  # expired session: a visit, the same visitor
    register(bob)  # another new visitor
    after = stats_of(app)
    assert (after["totalVisits"], after["pageViews"], after["uniqueVisitors"]) == (3, 4, 2)
    assert (after["todayVisits"], after["todayUniqueVisitors"]) == (3, 2)
    assert after["activeUsers"] == 3, "sessions active in the window: alice's first visit was, a minute ago"
    assert after["lastUpdated"] == "2026-01-15T12:00:00.000Z"


def test_a_returning_visitor_is_not_unique_again_even_after_redis_forgot_its_number(app, redis_client,
                                                                                    stats_of) -> None:
    alice = browser(app)
    register(alice)
    expire_sessions(redis_client)
    for key in redis_client.scan_iter("footfall:vn:*"):  # the cache of numbers is gone; the cookie has it
        redis_client.delete(key)
    register(alice)
    assert (stats_of(app)["totalVisits"], stats_of(app)["uniqueVisitors"]) == (2, 1)


def test_a_visitor_that_got_no_number_counts_once(make_app, redis_client, stats_of) -> None:
    """Numbering failed (no MongoDB to reserve a block in): the visitor is marked as seen instead."""
    app = make_app(mongodb_uri="mongodb://127.0.0.1:9/footfall?serverSelectionTimeoutMS=200")
    alice = browser(app)
    assert register(alice).status_code == 200
    expire_sessions(redis_client)
    register(alice)
    counts = redis_client.hmget(live_keys("default", date(2026, 1, 15)).totals, "visits", "unique_visitors")
    assert counts == [b"2", b"1"]


def test_active_visitors_are_sessions_seen_inside_the_window(make_app, clock, stats_of) -> None:
    app = make_app(active_window=300)
    alice, bob = browser(app), browser(app)
    register(alice)
    clock.advance(200)
    register(bob)
    assert stats_of(app)["activeUsers"] == 2
    clock.advance(100)  # alice's last request is exactly 300 s old: no longer active
    assert stats_of(app)["activeUsers"] == 1
    track(alice, "/again")  # back inside the window (same session: Redis kept it)
    assert stats_of(app)["activeUsers"] == 2
    clock.advance(301)
    assert stats_of(app)["activeUsers"] == 0
    assert stats_of(app)["totalVisits"] == 2, "leaving the window is not a new visit"


def test_today_is_the_configured_zones_day(make_app, clock, stats_of) -> None:
    clock.now = datetime(2026, 1, 16, 4, 30, tzinfo=UTC)  # 23:30 on January 15 in New York
    app = make_app(timezone="America/New_York")
    register(browser(app))
    register(browser(app))
    assert (stats_of(app)["todayVisits"], stats_of(app)["todayUniqueVisitors"]) == (2, 2)
    clock.advance(3600)  # 00:30 on January 16 in New York (05:30 UTC: the same UTC day as before)
    assert (stats_of(app)["todayVisits"], stats_of(app)["todayUniqueVisitors"]) == (0, 0)
    register(browser(app))
    stats = stats_of(app)
    assert (stats["todayVisits"], stats["todayUniqueVisitors"], stats["totalVisits"]) == (1, 1, 3)


def test_sites_are_counted_apart(app, stats_of) -> None:
    register(browser(app), site="blog")
    register(browser(app), site="shop")
    register(browser(app), site="shop")
    assert stats_of(app, "blog")["totalVisits"] == 1
    assert stats_of(app, "shop")["totalVisits"] == 2
    assert stats_of(app)["totalVisits"] == 0, "the default site had none"


def test_locations_count_visits_by_country(app, settings, redis_client, stats_of) -> None:
    from footfall.middleware.core import claim_session
    from footfall.stores.redis_sessions import RedisSessionStore

    store = RedisSessionStore(redis_client, settings.session_ttl)
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)
    for n, label in enumerate(["Bangladesh, BD", "Bangladesh, BD", "India, IN", ""]):
        claim = claim_session(_no_cookies(), fresh_visitor_id=f"v{n}", fresh_session_id=f"s{n}")
        store.track(claim, site="default", now=now, payload="{}", has_page_view=False, location=label,
                    number_new_visitor=False)
    assert stats_of(app)["locations"] == {"Bangladesh, BD": {"count": 2}, "India, IN": {"count": 1}}
    assert stats_of(app)["totalVisits"] == 4, "a visit from nowhere known still counts"


def _no_cookies():
    from footfall.middleware.core import Identity

    return Identity(None, None)
