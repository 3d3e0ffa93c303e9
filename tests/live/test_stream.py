"""``/analytics/live`` (Server-Sent Events) and ``/analytics/ws`` (WebSocket) on footfall's ASGI app,
served by uvicorn over real sockets on the real Redis and MongoDB-wire servers."""

from __future__ import annotations

import json

import pytest
import requests
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from footfall.live.app import LiveEndpoints
from tests.live.streams import SSEReader
from tests.live.support import AUTH, BROWSER, SEED_BODY

LIVE = "/analytics/live?site=default"


def visit(base: str, path: str = "/api/visitor/register") -> requests.Response:
    """A new visitor's register (its own cookie jar), over HTTP."""
    response = requests.Session().post(base + path, json=SEED_BODY, headers={"User-Agent": BROWSER}, timeout=10)
    assert response.status_code == 200, response.text
    return response


def track(session: requests.Session, base: str, path: str) -> None:
    response = session.post(f"{base}/analytics/track", json={"eventType": "page_view", "path": path},
                            headers={"User-Agent": BROWSER}, timeout=10)
    assert response.status_code == 200, response.text


def test_a_visit_reaches_an_open_stream_within_two_seconds(live_server) -> None:
    server = live_server()
    visit(server.url)
    stream = SSEReader(server.port, LIVE, AUTH)
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.next_frame(5).fields == {"retry": "1000"}
    first = stream.next_event(5)
    assert first.fields["event"] == "visitor_update"
    assert first.message["type"] == "visitor_update"
    assert first.message["stats"]["totalVisits"] == 1

    visit(server.url)  # another visitor arrives: 1 -> 2
    update = stream.next_event(2.0)
    assert update is not None, "no update within 2 s of the visit"
    assert update.message["stats"]["totalVisits"] == 2
    assert update.fields["id"] != first.fields["id"]

    jar = requests.Session()
    track(jar, server.url, "/pricing")  # tracked natively by the ASGI middleware
    tracked = stream.next_event(2.5)
    assert tracked.message["stats"]["totalVisits"] == 3
    assert tracked.message["stats"]["pageViews"] == 3
    stream.close()


def test_a_change_made_through_another_server_reaches_the_stream(live_server) -> None:
    """Two servers (two hubs, two subscriptions) on one Redis, as two workers are."""
    watched, other = live_server(), live_server()
    stream = SSEReader(watched.port, LIVE, AUTH)
    assert stream.next_event(5).message["stats"]["totalVisits"] == 0
    visit(other.url)
    update = stream.next_event(2.0)
    assert update is not None and update.message["stats"]["totalVisits"] == 1
    stream.close()


def test_changes_are_coalesced_to_a_leading_and_a_trailing_message(live_server, make_app) -> None:
    server = live_server(coalesce=2.0)
    stream = SSEReader(server.port, LIVE, AUTH)
    assert stream.next_event(5).message["stats"]["totalVisits"] == 0
    other_worker = make_app()
    for _ in range(10):  # a burst, well inside one coalescing interval
        response = other_worker.test_client().post("/api/visitor/register", json=SEED_BODY,
                                                   headers={"User-Agent": BROWSER})
        assert response.status_code == 200
    received = [frame.message["stats"]["totalVisits"] for frame in stream.events_within(3.5)]
    assert 1 <= len(received) <= 2, f"ten changes, at most one message per 2 s: {received}"
    assert received[-1] == 10, "the last state always arrives (trailing edge)"
    stream.close()


def test_an_idle_stream_gets_heartbeat_comments(live_server) -> None:
    server = live_server(heartbeat=0.2)
    stream = SSEReader(server.port, LIVE, AUTH)
    stream.next_event(5)
    frame = stream.next_frame(3)
    assert frame is not None and frame.comments == [": ping"] and not frame.fields
    stream.close()


def test_last_event_id_resumes_without_repeating_and_catches_up(live_server) -> None:
    server = live_server(heartbeat=0.3)
    visit(server.url)
    first = SSEReader(server.port, LIVE, AUTH)
    seen = first.next_event(5)
    first.close()

    resumed = SSEReader(server.port, LIVE, {**AUTH, "Last-Event-ID": seen.fields["id"]})
    frame = resumed.next_frame(5)
    assert frame.fields == {"retry": "1000"}
    assert resumed.next_frame(5).comments == [": ping"], "nothing missed: no event repeated, a heartbeat first"
    visit(server.url)
    update = resumed.next_event(2.5)
    assert update.message["stats"]["totalVisits"] == 2
    resumed.close()

    visit(server.url)  # a change while the client is away
    behind = SSEReader(server.port, LIVE, {**AUTH, "Last-Event-ID": update.fields["id"]})
    caught_up = behind.next_event(2)
    assert caught_up.message["stats"]["totalVisits"] == 3, "the latest state at once"
    behind.close()

    garbled = SSEReader(server.port, LIVE, {**AUTH, "Last-Event-ID": "not-an-id"})
    assert garbled.next_event(2).message["stats"]["totalVisits"] == 3
    garbled.close()


def test_activity_leaving_the_window_is_pushed(live_server, clock) -> None:
    server = live_server(active_window=60, sweep_interval=0.2, coalesce=0.2)
    visit(server.url)
    stream = SSEReader(server.port, LIVE, AUTH)
    assert stream.next_event(5).message["stats"]["activeUsers"] == 1
    clock.advance(61)
    update = stream.next_event(3)
    assert update is not None and update.message["stats"]["activeUsers"] == 0
    assert update.message["stats"]["totalVisits"] == 1
    stream.close()


@pytest.mark.parametrize(
    ("public", "headers", "status"),
    [
        pytest.param(False, {}, 401, id="no token is 401"),
        pytest.param(False, {"Authorization": "Bearer wrong"}, 403, id="wrong token is 403"),
        pytest.param(True, {}, 200, id="public needs none"),
    ],
)
def test_who_may_open_a_stream(live_server, public: bool, headers: dict[str, str], status: int) -> None:
    server = live_server(public_stats=public)
    stream = SSEReader(server.port, LIVE, headers)
    assert stream.status == status
    if status != 200:
        assert "error" in stream.body
    stream.close()


def test_stream_refuses_bad_requests_with_json(live_server) -> None:
    server = live_server()
    bad_site = SSEReader(server.port, "/analytics/live?site=%24bad", AUTH)
    assert bad_site.status == 400 and "site" in bad_site.body["error"]
    posted = requests.post(f"{server.url}/analytics/live", headers=AUTH, timeout=10)
    assert posted.status_code == 405 and posted.json()["error"]
    head = requests.head(f"{server.url}{LIVE}", headers=AUTH, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Type"].startswith("text/event-stream")


def test_websocket_sends_the_seed_shape_on_every_change(live_server) -> None:
    server = live_server()
    url = f"ws://127.0.0.1:{server.port}/analytics/ws?site=default"
    with connect(url, additional_headers=AUTH, open_timeout=10) as socket:
        first = json.loads(socket.recv(timeout=5))
        assert first["type"] == "visitor_update"
        assert set(first) == {"type", "stats"}
        assert first["stats"]["totalVisits"] == 0
        visit(server.url)
        update = json.loads(socket.recv(timeout=2.5))
        assert update == {"type": "visitor_update", "stats": update["stats"]}
        assert update["stats"]["totalVisits"] == 1


def test_websocket_handshake_is_refused_without_credentials(live_server) -> None:
    server = live_server()
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}/analytics/ws", open_timeout=10)
    assert refused.value.response.status_code == 401
    assert "error" in json.loads(refused.value.response.body)


def _handshake(settings, headers: dict[str, str]) -> WebSocket:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "websocket", "path": "/analytics/ws", "headers": raw, "query_string": b""}
    return WebSocket(scope, receive=None, send=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "public", "refused"),
    [
        pytest.param({"Origin": "https://evil.example", "Host": "stats.example"}, False, True,
                     id="cookie from a foreign origin"),
        pytest.param({"Origin": "https://stats.example", "Host": "stats.example"}, False, False, id="same host"),
        pytest.param({"Origin": "https://shop.example", "Host": "stats.example"}, False, False,
                     id="allowed origin"),
        pytest.param({"Origin": "https://evil.example", "Host": "stats.example", "Authorization": "Bearer t"},
                     False, False, id="bearer token, not a cookie"),
        pytest.param({"Origin": "https://evil.example", "Host": "stats.example"}, True, False, id="public"),
    ],
)
def test_cookie_authorized_websockets_must_come_from_an_allowed_origin(settings, headers, public, refused) -> None:
    endpoints = LiveEndpoints(settings.with_overrides(public_stats=public), None, None)  # type: ignore[arg-type]
    assert endpoints._origin_refused(_handshake(settings, headers)) is refused


def test_open_streams_do_not_hold_the_server(live_server) -> None:
    """More open streams than a threaded worker has threads (gthread: 8), and a register and a track
    are still answered, and every stream gets the change (how fast: benchmarks/live_streams.py)."""
    server = live_server(public_stats=True)
    streams = [SSEReader(server.port, LIVE) for _ in range(50)]
    assert all(stream.status == 200 for stream in streams)
    body = visit(server.url).json()
    assert body["success"] is True and body["stats"]["totalVisits"] == 1
    track(requests.Session(), server.url, "/")
    assert all(stream.next_event(5) is not None for stream in streams)
    for stream in streams:
        stream.close()
