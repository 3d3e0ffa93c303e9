"""Fail open, through each adapter: with Redis down the wrapped app answers as usual and quickly,
untracked; each event that could not be queued is counted (``Tracker.dropped``,
``AsyncTracker.dropped``) and the count reaches Redis's ``footfall:counters`` with the next request
that gets through, in that same round trip. The track endpoint answers 503 so the client may retry.
MongoDB down does not concern the request path at all: events wait in the stream until a drain
writes them."""

from __future__ import annotations

import socket
import time

import pytest

from footfall.embedded import free_port
from footfall.middleware.core import Case

PAGE_VIEW = {"eventType": "page_view", "path": "/x", "event_id": "6f1c7a52-2f4e-4c39-9f0e-2d7b8f6e1a01"}
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def dropped_in_redis(redis_client) -> int:
    return int(redis_client.hget("footfall:counters", "dropped") or 0)


@pytest.fixture
def redis_down_site(make_site):
    """A site whose ``FOOTFALL_REDIS_URL`` names a loopback port nobody listens on."""
    return make_site(redis_url=f"redis://127.0.0.1:{free_port()}/0")


def test_redis_down_page_is_served_quickly_and_untracked(redis_down_site, redis_client, mongo_db, drain) -> None:
    site = redis_down_site
    started = time.perf_counter()
    response = site.client.get("/whoami")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0, f"the app waited {elapsed:.2f} s for a dead Redis"
    assert response.json() == {"visit": None}, "footfall.visit is None"
    assert site.seen == [None]
    assert response.headers.get_list("set-cookie") == []
    dropped = site.tracker.dropped
    assert (dropped.total, dropped.unreported) == (1, 1)
    assert redis_client.dbsize() == 0, "nothing reached the real Redis"
    assert drain() == 0
    assert mongo_db.sessions.count_documents({}) == 0


def test_redis_down_every_request_is_counted(redis_down_site) -> None:
    started = time.perf_counter()
    for _ in range(3):
        assert redis_down_site.client.get("/").status_code == 200
    assert time.perf_counter() - started < 1.5
    assert redis_down_site.tracker.dropped.total == 3


def test_redis_down_track_endpoint_is_503(redis_down_site, redis_client) -> None:
    started = time.perf_counter()
    response = redis_down_site.track(PAGE_VIEW, headers={"Origin": "https://shop.example"})
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/json"
    assert "retry" in response.json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert response.headers.get_list("set-cookie") == []
    assert redis_client.dbsize() == 0
    assert redis_down_site.tracker.dropped.total == 1


def test_redis_down_bad_input_is_still_400(redis_down_site) -> None:
    response = redis_down_site.track(b"{not json")
    assert response.status_code == 400
    assert redis_down_site.tracker.dropped.total == 0


def test_redis_down_crawlers_and_excluded_paths_are_not_dropped_events(redis_down_site) -> None:
    site = redis_down_site
    assert site.new_client(GOOGLEBOT_UA).get("/").status_code == 200
    assert site.client.get("/static/app.css").status_code == 200
    assert site.track(PAGE_VIEW, client=site.new_client(GOOGLEBOT_UA)).json()["status"] == "ignored"
    assert site.tracker.dropped.total == 0, "nothing was to be recorded, so nothing was lost"


def test_redis_outage_and_recovery(make_site, redis_link, redis_client, command_calls, cookies_of) -> None:
    """Through a TCP link to the real Redis that the test cuts and restores: the pooled connection
    dies, requests go on untracked and are counted, and the first request after the outage reports
    the count to ``footfall:counters`` inside its own single script call."""
    site = make_site(redis_url=redis_link.url)
    assert set(cookies_of(site.client.get("/"))) == {"session", "visitor_id"}, "tracked while the link is up"
    first = site.last_visit
    dropped = site.tracker.dropped

    redis_link.down()
    started = time.perf_counter()
    for path in ("/", "/page/a"):
        response = site.client.get(path)
        assert response.status_code == 200
        assert response.headers.get_list("set-cookie") == []
    assert site.track(PAGE_VIEW).status_code == 503
    assert time.perf_counter() - started < 1.5
    assert site.seen[-2:] == [None, None]
    assert (dropped.total, dropped.unreported) == (3, 3)
    assert dropped_in_redis(redis_client) == 0

    redis_link.up()
    before = command_calls()
    response = site.client.get("/page/back")
    after = command_calls()
    assert response.status_code == 200
    back = site.last_visit
    assert back.case is Case.SAME_SESSION, "the session outlived the outage in Redis"
    assert back.session_id == first.session_id
    assert dropped_in_redis(redis_client) == 3
    assert (dropped.total, dropped.unreported) == (3, 0)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    assert delta["cmdstat_evalsha"] == 1, "one script call"
    assert delta.get("cmdstat_hincrby") == 1, "the count went with that call (HINCRBY inside the script)"

    site.client.get("/page/again")
    assert dropped_in_redis(redis_client) == 3, "reported once"


def test_count_survives_a_failed_report(make_site, redis_link, redis_client) -> None:
    """A request that took the unreported count but failed gives it back; nothing is lost or doubled."""
    site = make_site(redis_url=redis_link.url)
    site.client.get("/")
    redis_link.down()
    site.client.get("/")
    site.client.get("/")
    assert site.tracker.dropped.unreported == 2
    redis_link.up()
    site.client.get("/")
    assert dropped_in_redis(redis_client) == 2
    redis_link.down()
    site.client.get("/")
    redis_link.up()
    site.client.get("/")
    assert dropped_in_redis(redis_client) == 3
    assert site.tracker.dropped.total == 3


@pytest.fixture
def mongo_down_site(make_site, settings):
    """A site on the live Redis whose ``FOOTFALL_MONGODB_URI`` names a port nobody listens on."""
    return make_site(settings.with_overrides(mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/footfall",
                                             inprocess_drain=False))


def test_mongodb_down_track_endpoint_still_records(mongo_down_site, redis_client, queued, cookies_of,
                                                   drain, mongo_db) -> None:
    site = mongo_down_site
    started = time.perf_counter()
    response = site.track(PAGE_VIEW)
    # the only MongoDB call a request can make: reserving a block of visitor numbers, bounded by a
    # 0.5 s server selection; it fails, and the visit goes on without a number, counted
    assert time.perf_counter() - started < 2.0
    assert response.status_code == 200
    assert response.json() == {"status": "recorded", "visitor_number": None, "visitor_label": None}
    assert site.tracker.numbers_failed.total == 1
    assert set(cookies_of(response)) == {"session", "visitor_id"}, "Redis decided the visit"
    assert queued() == 1, "the event waits in the stream"
    assert site.tracker.dropped.total == 0
    started = time.perf_counter()
    assert site.new_client().get("/").status_code == 200
    assert time.perf_counter() - started < 0.4, "no new attempt on MongoDB for a few seconds after one failed"

    response = site.track({**PAGE_VIEW, "event_id": "0d9a3c1e-5b7f-4e2a-8c6d-1f3b5a7c9e02"})
    assert response.status_code == 200
    assert queued() == 3  # two page views and the other visitor's visit

    # a drain on a MongoDB that answers writes what waited
    assert drain() == 3
    assert mongo_db.page_views.count_documents({}) == 2
    assert sorted(s["page_views"] for s in mongo_db.sessions.find()) == [0, 2]


def test_mongodb_down_page_still_gets_a_visit(mongo_down_site, redis_client, queued, cookies_of) -> None:
    response = mongo_down_site.client.get("/")
    assert response.status_code == 200
    assert set(cookies_of(response)) == {"session", "visitor_id"}
    assert len(redis_client.keys("footfall:session:*")) == 1
    assert queued() == 1


@pytest.fixture
def silent_redis_url():
    """A loopback port that takes connections (into its backlog) and never answers: a Redis that hangs
    (paused, or cut off without a reset) rather than one that refuses."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    listener.close()


def test_redis_that_never_answers_costs_a_request_one_socket_timeout(make_site, silent_redis_url) -> None:
    site = make_site(redis_url=silent_redis_url)
    timeout = site.settings.redis_socket_timeout
    for path in ("/whoami", "/page/a"):
        started = time.perf_counter()
        response = site.client.get(path)
        elapsed = time.perf_counter() - started
        assert response.status_code == 200
        assert elapsed < timeout * 4 + 0.3, f"{path}: the app waited {elapsed:.2f} s on a silent Redis"
        assert response.headers.get_list("set-cookie") == []
    assert site.seen == [None, None]
    started = time.perf_counter()
    assert site.track(PAGE_VIEW).status_code == 503
    assert time.perf_counter() - started < timeout * 4 + 0.3
    assert site.tracker.dropped.total == 3
