"""Fail open: with Redis (or MongoDB) down the wrapped app answers as usual and quickly, the loss is
counted in the tracker's counters, and the track endpoint answers 503 so the client may retry."""

from __future__ import annotations

import time

import pytest
from pymongo import MongoClient

from footfall.embedded import free_port
from footfall.middleware.tracker import Tracker
from footfall.stores.connect import redis_client as make_redis_client
from footfall.stores.mongo_recorder import MongoRecorder
from footfall.stores.redis_sessions import RedisSessionStore

PAGE_VIEW = {"eventType": "page_view", "path": "/x", "event_id": "6f1c7a52-2f4e-4c39-9f0e-2d7b8f6e1a01"}


@pytest.fixture
def redis_down_site(make_site):
    """A site whose ``FOOTFALL_REDIS_URL`` names a loopback port nobody listens on."""
    return make_site(redis_url=f"redis://127.0.0.1:{free_port()}/0")


def test_redis_down_page_is_served_quickly_and_untracked(redis_down_site, mongo_db) -> None:
    site = redis_down_site
    started = time.perf_counter()
    response = site.client.get("/whoami")
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert elapsed < 1.0, f"the app waited {elapsed:.2f} s for a dead Redis"
    assert response.get_json() == {"visit": None}, 'environ["footfall.visit"] is None'
    assert site.seen == [None]
    assert response.headers.getlist("Set-Cookie") == []
    assert site.middleware.tracker.counters.snapshot() == {"visits_unresolved": 1, "records_failed": 0}
    assert mongo_db.sessions.count_documents({}) == 0


def test_redis_down_every_request_is_counted(redis_down_site) -> None:
    for _ in range(3):
        assert redis_down_site.client.get("/").status_code == 200
    assert redis_down_site.middleware.tracker.counters.snapshot()["visits_unresolved"] == 3


def test_redis_down_track_endpoint_is_503(redis_down_site, mongo_db) -> None:
    started = time.perf_counter()
    response = redis_down_site.track(PAGE_VIEW, headers={"Origin": "https://shop.example"})
    assert time.perf_counter() - started < 1.0
    assert response.status_code == 503
    assert response.mimetype == "application/json"
    assert "retry" in response.get_json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert response.headers.getlist("Set-Cookie") == []
    assert mongo_db.page_views.count_documents({}) == 0
    assert redis_down_site.middleware.tracker.counters.snapshot()["visits_unresolved"] == 1


def test_redis_down_bad_input_is_still_400(redis_down_site) -> None:
    response = redis_down_site.track(b"{not json")
    assert response.status_code == 400
    assert redis_down_site.middleware.tracker.counters.snapshot()["visits_unresolved"] == 0


@pytest.fixture
def mongo_down_site(make_site, settings):
    """A site on the live Redis and a MongoDB client for a port nobody listens on (real pymongo,
    server selection cut to 0.2 s so the test stays quick)."""
    client: MongoClient = MongoClient(f"mongodb://127.0.0.1:{free_port()}/footfall",
                                      serverSelectionTimeoutMS=200, tz_aware=True)
    tracker = Tracker(settings, RedisSessionStore(make_redis_client(settings), settings.session_ttl),
                      MongoRecorder(client.get_default_database()))
    return make_site(tracker=tracker)  # make_site closes both clients afterwards


def test_mongodb_down_page_still_gets_a_visit(mongo_down_site, redis_client, cookies_of) -> None:
    site = mongo_down_site
    response = site.client.get("/")
    assert response.status_code == 200
    assert set(cookies_of(response)) == {"session", "visitor_id"}, "Redis decided the visit"
    assert redis_client.dbsize() == 1
    assert site.middleware.tracker.counters.snapshot() == {"visits_unresolved": 0, "records_failed": 1}


def test_mongodb_down_track_endpoint_is_503(mongo_down_site) -> None:
    response = mongo_down_site.track(PAGE_VIEW)
    assert response.status_code == 503
    assert "retry" in response.get_json()["error"]
    # the session start and the page view were both refused
    assert mongo_down_site.middleware.tracker.counters.snapshot()["records_failed"] == 2
