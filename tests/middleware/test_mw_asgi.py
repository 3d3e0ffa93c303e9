"""What only the ASGI adapter has, on a Starlette app wrapped by ``FootfallASGIMiddleware``: a streamed
response keeps every chunk and gets its cookies on the start message, a WebSocket route and the
lifespan pass through untouched, and the visit is published both at ``scope["footfall.visit"]`` and
at Starlette's ``request.state.footfall_visit`` without clobbering the lifespan state."""

from __future__ import annotations

import asyncio
import json

import httpx2

from footfall.middleware.core import Case
from footfall.stores.redis_sessions import session_key


def test_streaming_response_keeps_its_chunks_and_gets_the_cookies(asgi_site, cookies_of, queued) -> None:
    with asgi_site.client.stream("GET", "/stream") as response:
        assert response.status_code == 200
        assert set(cookies_of(response)) == {"session", "visitor_id"}, "on the start message, before any chunk"
        chunks = list(response.iter_raw())
    assert chunks == list(asgi_site.stream_chunks), "every chunk, in order, one message each"
    assert asgi_site.last_visit.case is Case.NEW_VISITOR
    assert queued() == 1

    with asgi_site.client.stream("GET", "/stream") as again:
        assert set(cookies_of(again)) == {"session"}
        assert list(again.iter_raw()) == list(asgi_site.stream_chunks)
    assert asgi_site.last_visit.case is Case.SAME_SESSION


def test_streamed_html_page_is_a_server_page_view(build_site, mongo_db, queued, drain) -> None:
    site = build_site("asgi", server_pageviews=True)
    response = site.client.get("/stream")
    assert response.content == b"".join(site.stream_chunks)
    assert queued() == 2, "the visit start, then the page view when the start message went out"
    assert drain() == 2
    [view] = mongo_db.page_views.find()
    assert (view["path"], view["session_id"]) == ("/stream", site.last_visit.session_id)


def test_websocket_passes_through_untracked(asgi_site, redis_client, queued) -> None:
    with asgi_site.new_client().websocket_connect("/ws") as websocket:
        websocket.send_text("hello")
        reply = websocket.receive_json()
    assert reply == {"echo": "hello", "visit_in_scope": False, "visit_in_state": False}, "scope untouched"
    assert redis_client.dbsize() == 0, "no session, nothing queued"
    assert asgi_site.seen == []
    assert asgi_site.tracker.dropped.total == 0


def test_websocket_with_session_cookies_does_not_slide_the_session(asgi_site, redis_client, queued) -> None:
    asgi_site.client.get("/")
    key = session_key(asgi_site.last_visit.session_id)
    redis_client.pexpire(key, 5_000)
    with asgi_site.client.websocket_connect("/ws") as websocket:  # the jar's cookies go with the handshake
        websocket.send_text("again")
        assert websocket.receive_json()["echo"] == "again"
    assert redis_client.pttl(key) <= 5_000
    assert queued() == 1, "only the page's visit start"


def test_lifespan_runs_through_the_middleware(build_site) -> None:
    site = build_site("asgi")
    assert site.lifespan_events == ["startup"], "TestClient entered: startup ran through the middleware"
    state = site.client.get("/state").json()
    assert state == {"state": ["footfall_visit", "started_by_lifespan"], "started": True}, \
        "footfall adds its key to the lifespan state, it does not replace it"
    site.close()
    assert site.lifespan_events == ["startup", "shutdown"]


def test_visit_is_in_scope_and_request_state(asgi_site) -> None:
    """``/whoami`` and the app's innermost middleware both check that ``request.state.footfall_visit``
    is the object at ``scope["footfall.visit"]``: tracked, excluded and crawler requests."""
    tracked = asgi_site.client.get("/whoami").json()
    assert tracked["is_new_visitor"] is True
    assert asgi_site.client.get("/static/app.css").status_code == 200
    crawler = asgi_site.new_client("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    assert crawler.get("/whoami").json() == {"visit": None}
    assert [visit is None for visit in asgi_site.seen] == [False, True, True]


def test_aclose_closes_the_request_path_clients(build_site, redis_client, poll) -> None:
    own_id = str(redis_client.client_id())
    before = {client["id"] for client in redis_client.client_list()}
    site = build_site("asgi")
    site.client.get("/")

    def connected() -> set[str]:
        return {client["id"] for client in redis_client.client_list()} - before - {own_id}

    assert len(connected()) == 1, "the redis.asyncio pool's one connection"
    site.close()
    assert poll(lambda: not connected(), timeout=2), f"connections left open: {connected()}"


def test_concurrent_new_visitors_on_one_event_loop(build_site, redis_client, mongo_db, drain) -> None:
    """Thirty first visits in flight at once on the site's loop, with blocks of four visitor numbers:
    the refills (``AsyncTracker``'s lock, MongoDB's ``AsyncMongoClient``) hand out each number once."""
    # (a generous Redis timeout: thirty connections opened at once on a loaded machine must not turn
    # this numbering test into a fail-open one)
    site = build_site("asgi", visitor_number_block=4, redis_socket_timeout=2.0)
    browser = {"User-Agent": site.client.headers["User-Agent"], "Content-Type": "application/json"}

    async def visit_all() -> list[httpx2.Response]:
        transport = httpx2.ASGITransport(app=site.middleware)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await asyncio.gather(*(
                client.post("/analytics/track", headers=browser,
                            content=json.dumps({"eventType": "page_view", "path": f"/p{n}"}))
                for n in range(30)))

    responses = site.run(visit_all)
    assert [r.status_code for r in responses] == [200] * 30
    numbers = sorted(r.json()["visitor_number"] for r in responses)
    assert numbers == list(range(1, 31)), "every visitor numbered, no number twice"
    assert len(redis_client.keys("footfall:session:*")) == 30
    assert drain() == 30
    assert sorted(v["visitor_number"] for v in mongo_db.visitors.find()) == numbers
