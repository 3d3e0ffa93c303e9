"""The in-process drain (``FOOTFALL_INPROCESS_DRAIN=true``, the default outside tests), through each
adapter: a thread the middleware starts on its first tracked request, which writes the stream to
MongoDB; and closing the middleware (``FootfallMiddleware.close()``, ``await
FootfallASGIMiddleware.aclose()``), which stops it after writing what is queued and closes the
clients."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest

from footfall.errors import ConfigurationError

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

    site.close()
    assert drain_threads() == [], "closing the middleware stopped the thread"


def test_track_endpoint_alone_starts_the_drain(no_drain_thread_yet, make_site, settings, mongo_db, poll) -> None:
    site = make_site(settings.with_overrides(inprocess_drain=True))
    assert site.track({"eventType": "page_view", "path": "/only"}).status_code == 200
    assert len(drain_threads()) == 1
    assert poll(lambda: mongo_db.page_views.count_documents({}) == 1, timeout=10)
    site.close()
    assert drain_threads() == []


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

    site.close()  # no waiting for the thread to catch up: closing writes the rest
    assert drain_threads() == []
    assert mongo_db.sessions.count_documents({}) == 5
    assert queued() == 0
    assert poll(lambda: not connected(), timeout=2), f"connections left open: {connected()}"


def test_inprocess_drain_without_mongodb_uri_fails_at_construction(make_site, queued) -> None:
    """Not at the first tracked request, where the error would fail every request of the app."""
    with pytest.raises(ConfigurationError, match="FOOTFALL_MONGODB_URI.*FOOTFALL_INPROCESS_DRAIN=false"):
        make_site(mongodb_uri=None, inprocess_drain=True)

    # without the in-process drain the request path needs no MongoDB URI at all
    site = make_site(mongodb_uri=None, inprocess_drain=False)
    response = site.client.get("/")
    assert response.status_code == 200
    assert len(response.headers.get_list("set-cookie")) == 2
    assert queued() == 1


def test_aclose_keeps_the_event_loop_running_while_the_drain_stops(no_drain_thread_yet, build_site,
                                                                   settings) -> None:
    """Stopping the drain thread waits for its last read and batch (a second or more, up to its flush
    timeout with MongoDB down); ``aclose()`` waits for it off the event loop, so the other tasks of
    the app go on meanwhile."""
    site = build_site("asgi", settings.with_overrides(inprocess_drain=True))
    site.client.get("/")
    assert len(drain_threads()) == 1

    async def close_while_ticking() -> int:
        ticks_while_draining = 0

        async def tick() -> None:
            nonlocal ticks_while_draining
            while True:
                if drain_threads():
                    ticks_while_draining += 1
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        await site.middleware.aclose()
        ticker.cancel()
        return ticks_while_draining

    assert site.run(close_while_ticking) > 0, "the event loop ran while the drain thread stopped"
    assert drain_threads() == []
