"""The in-process drain (``FOOTFALL_INPROCESS_DRAIN=true``, the default outside tests): a thread the
middleware starts on its first tracked request, which writes the stream to MongoDB; and
``FootfallMiddleware.close()``, which stops it after writing what is queued and closes the clients."""

from __future__ import annotations

import threading
import uuid

import pytest
from flask import Flask

from footfall.errors import ConfigurationError
from footfall.middleware.wsgi import FootfallMiddleware

DRAIN_THREAD = "footfall-drain"


def drain_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == DRAIN_THREAD and t.is_alive()]


@pytest.fixture
def no_drain_thread_yet() -> None:
    assert drain_threads() == [], "a drain thread of an earlier test is still running"


def test_inprocess_drain_writes_events_to_mongodb(no_drain_thread_yet, make_site, settings, mongo_db,
                                                  redis_client, queued, poll) -> None:
    site = make_site(settings.with_overrides(inprocess_drain=True))
    assert site.client.get("/static/app.css").status_code == 200
    assert drain_threads() == [], "started lazily, by the first tracked request"

    site.client.get("/")
    visit = site.last_visit
    assert len(drain_threads()) == 1
    event_ids = [str(uuid.uuid4()) for _ in range(2)]
    for n, event_id in enumerate(event_ids):
        site.track({"eventType": "page_view", "path": f"/p{n}", "event_id": event_id})
    site.client.get("/page/nothing-to-record")
    assert len(drain_threads()) == 1, "one thread per process"

    def stored() -> bool:
        session = mongo_db.sessions.find_one({"_id": visit.session_id})
        return bool(session and session.get("page_views") == 2 and queued() == 0)

    assert poll(stored, timeout=10), "the background drain wrote the events within 10 s"
    assert sorted(view["_id"] for view in mongo_db.page_views.find()) == sorted(event_ids)
    assert int(redis_client.hget("footfall:counters", "written")) == 3, "visit start + 2 page views"

    site.middleware.close()
    assert drain_threads() == [], "close() stopped the thread"


def test_close_writes_what_is_queued_and_closes_the_clients(no_drain_thread_yet, make_site, settings, mongo_db,
                                                            redis_client, queued, poll) -> None:
    own_id = redis_client.client_id()
    before = {client["id"] for client in redis_client.client_list()}
    site = make_site(settings.with_overrides(inprocess_drain=True))
    for n in range(5):
        site.new_client().get(f"/page/{n}")
    assert len(drain_threads()) == 1

    def connected() -> set[str]:
        return {client["id"] for client in redis_client.client_list()} - before - {str(own_id)}

    assert len(connected()) >= 2, "the request path's connection and the drain's"

    site.middleware.close()  # no waiting for the thread to catch up: close() writes the rest
    assert drain_threads() == []
    assert mongo_db.sessions.count_documents({}) == 5
    assert queued() == 0
    assert poll(lambda: not connected(), timeout=2), f"connections left open: {connected()}"


def test_inprocess_drain_without_mongodb_uri_fails_at_construction(make_site, settings, queued) -> None:
    """Not at the first tracked request, where the error would fail every request of the app."""
    with pytest.raises(ConfigurationError, match="FOOTFALL_MONGODB_URI.*FOOTFALL_INPROCESS_DRAIN=false"):
        FootfallMiddleware(Flask("no_mongodb_uri").wsgi_app,
                           settings.with_overrides(mongodb_uri=None, inprocess_drain=True))

    # without the in-process drain the request path needs no MongoDB URI at all
    site = make_site(mongodb_uri=None, inprocess_drain=False)
    response = site.client.get("/")
    assert response.status_code == 200
    assert len(response.headers.getlist("Set-Cookie")) == 2
    assert queued() == 1
