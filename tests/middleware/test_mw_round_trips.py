"""What each kind of request costs Redis, counted by the real server (``INFO commandstats``), through
each adapter (``redis`` for WSGI, ``redis.asyncio`` for ASGI: the same script, the same calls).

A tracked request is one ``EVALSHA``: the script confirms and slides the session or starts one,
queues what must be recorded and reports dropped events, all server-side. Commands a script runs are
counted in ``commandstats`` too, so the expected deltas list them (``INSIDE_SCRIPT``); everything
else in a delta was a command sent over the wire. The test's own ``INFO`` call is in every delta.
redis-py loads the script on its first use (``EVALSHA`` → ``NOSCRIPT`` → ``SCRIPT LOAD`` →
``EVALSHA``) and a new connection says ``HELLO``: each test warms its site up first.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from footfall.middleware.core import Case
from footfall.stores.redis_sessions import session_key

GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
INSIDE_SCRIPT = frozenset({"cmdstat_hget", "cmdstat_hset", "cmdstat_pexpire", "cmdstat_xadd", "cmdstat_hincrby",
                           "cmdstat_get", "cmdstat_set", "cmdstat_hmget", "cmdstat_zscore", "cmdstat_zadd",
                           "cmdstat_zremrangebyscore", "cmdstat_sadd", "cmdstat_hsetnx", "cmdstat_publish",
                           "cmdstat_exists"})
OWN_INFO = {"cmdstat_info": 1}

# One script call each; the rest of each map is what that call ran inside Redis. A visitor whose
# cookie carries its number needs no look-up of it; a new visitor takes the allocator's next number
# (HMGET, HSET, HINCRBY numbers_assigned) and caches it (SET); a new session refreshes that cache.
# Every tracked request keeps the live counters in the same call (footfall.live.counters): its
# session's last activity in the site's active set (ZSCORE, ZADD, PEXPIRE); a visit start also trims
# the set, counts the visit in the totals and the day (HINCRBY x2, SADD, PEXPIRE x2) and a visitor
# new on the site (HINCRBY); any change bumps the sequence (HSETNX, HINCRBY, HSET) and tries the
# site's notice gate (SET NX PX), PUBLISHing when it was open: at most once per 250 ms, so whether a
# given request publishes depends on timing, and ``measure`` reports PUBLISH apart.
ACTIVE = {"cmdstat_zscore": 1, "cmdstat_zadd": 1, "cmdstat_pexpire": 1}
CHANGE = {"cmdstat_hsetnx": 1}
SAME_SESSION = {"cmdstat_evalsha": 1, "cmdstat_hget": 1, "cmdstat_hset": 1, **ACTIVE, "cmdstat_pexpire": 2}
NEW_VISITOR = {"cmdstat_evalsha": 1, "cmdstat_hmget": 1, "cmdstat_hset": 3, "cmdstat_hincrby": 5,
               "cmdstat_set": 2, "cmdstat_xadd": 1, **ACTIVE, "cmdstat_pexpire": 4, "cmdstat_zremrangebyscore": 1,
               "cmdstat_sadd": 1, **CHANGE}
EXPIRED_SESSION = {"cmdstat_evalsha": 1, "cmdstat_hget": 1, "cmdstat_hset": 2, "cmdstat_set": 2, "cmdstat_xadd": 1,
                   **ACTIVE, "cmdstat_pexpire": 4, "cmdstat_zremrangebyscore": 1, "cmdstat_hincrby": 3,
                   "cmdstat_sadd": 1, **CHANGE}
SAME_SESSION_PAGE_VIEW = {"cmdstat_evalsha": 1, "cmdstat_hget": 1, "cmdstat_hset": 2, "cmdstat_xadd": 1,
                          **ACTIVE, "cmdstat_pexpire": 2, "cmdstat_hincrby": 2, "cmdstat_set": 1, **CHANGE}
SERVER_PAGE_VIEW = {"cmdstat_evalsha": 1, "cmdstat_xadd": 1, "cmdstat_hincrby": 2, "cmdstat_hset": 1,
                    "cmdstat_set": 1, **CHANGE}


def measure(command_calls: Callable[[], dict[str, int]], action: Callable[[], object]) -> dict[str, int]:
    """The ``commandstats`` calls that changed while ``action`` ran (plus the closing ``INFO``), without
    ``PUBLISH`` (at most one, checked here: the notice gate decides whether it happens)."""
    before = command_calls()
    action()
    after = command_calls()
    delta = {name: calls - before.get(name, 0) for name, calls in after.items() if calls != before.get(name, 0)}
    assert delta.pop("cmdstat_publish", 0) <= 1
    return delta


def sent_over_the_wire(delta: dict[str, int]) -> dict[str, int]:
    return {name: calls for name, calls in delta.items() if name not in INSIDE_SCRIPT and name not in OWN_INFO}


def test_tracked_requests_cost_one_round_trip(site, redis_client, command_calls) -> None:
    site.client.get("/")  # warm-up: connection handshake and script load
    visit = site.last_visit
    assert visit.case is Case.NEW_VISITOR

    same = measure(command_calls, lambda: site.client.get("/page/two"))
    assert site.last_visit.case is Case.SAME_SESSION
    assert same == {**SAME_SESSION, **OWN_INFO}
    assert sent_over_the_wire(same) == {"cmdstat_evalsha": 1}

    new = measure(command_calls, lambda: site.new_client().get("/"))
    assert site.last_visit.case is Case.NEW_VISITOR
    assert new == {**NEW_VISITOR, **OWN_INFO}
    assert sent_over_the_wire(new) == {"cmdstat_evalsha": 1}

    redis_client.delete(session_key(visit.session_id))
    expired = measure(command_calls, lambda: site.client.get("/"))
    assert site.last_visit.case is Case.EXPIRED_SESSION
    assert expired == {**EXPIRED_SESSION, **OWN_INFO}

    track = measure(command_calls, lambda: site.track({"eventType": "page_view", "path": "/t"}))
    assert track == {**SAME_SESSION_PAGE_VIEW, **OWN_INFO}, "page view queued inside the same script call"
    assert sent_over_the_wire(track) == {"cmdstat_evalsha": 1}


def test_server_page_view_is_a_second_round_trip(make_site, command_calls) -> None:
    """Whether a server-rendered response is a page is known after the app answered: one script
    call, then a second one that queues the page view and counts it into the live counters."""
    site = make_site(server_pageviews=True)
    site.client.get("/")
    html = measure(command_calls, lambda: site.client.get("/page/two"))
    assert site.last_visit.case is Case.SAME_SESSION
    both = {name: SAME_SESSION.get(name, 0) + SERVER_PAGE_VIEW.get(name, 0)
            for name in {*SAME_SESSION, *SERVER_PAGE_VIEW}}
    assert html == {**both, **OWN_INFO}
    assert sent_over_the_wire(html) == {"cmdstat_evalsha": 2}
    json_get = measure(command_calls, lambda: site.client.get("/api/data"))
    assert json_get == {**SAME_SESSION, **OWN_INFO}, "not a page view: no second round trip"


@pytest.mark.parametrize(
    ("method", "path", "user_agent", "body"),
    [
        pytest.param("GET", "/static/app.css", None, None, id="excluded path"),
        pytest.param("GET", "/favicon.ico", None, None, id="favicon"),
        pytest.param("HEAD", "/", None, None, id="HEAD"),
        pytest.param("OPTIONS", "/", None, None, id="OPTIONS"),
        pytest.param("GET", "/", GOOGLEBOT_UA, None, id="crawler"),
        pytest.param("GET", "/", "", None, id="empty User-Agent"),
        pytest.param("POST", "/analytics/track", GOOGLEBOT_UA, b'{"eventType": "page_view", "path": "/"}',
                     id="crawler on the track endpoint"),
        pytest.param("POST", "/analytics/track", None, b"{not json", id="rejected track body"),
        pytest.param("GET", "/analytics/track", None, None, id="track endpoint, wrong method"),
    ],
)
def test_untracked_requests_cost_nothing(site, command_calls, method, path, user_agent, body) -> None:
    site.client.get("/")  # a known visitor with cookies, so nothing is untracked for lack of them
    client = site.client if user_agent is None else site.new_client(user_agent)
    if user_agent is not None:
        for name, value in site.jar().items():
            site.set_cookie(client, name, value)
    delta = measure(command_calls, lambda: client.request(method, path, content=body))
    assert delta == OWN_INFO
