"""Custom events through ``POST /analytics/track`` (either adapter): any ``eventType`` other than
``page_view`` is one, named by ``name`` or by the ``eventType`` itself; queued as the stream's
``page_view`` with ``type: "custom"``, stored in ``custom_events`` and counted into the visit's
``events`` and ``event_names`` once; every malformed ``name`` or ``props`` is a 400 naming it."""

from __future__ import annotations

import json
import uuid

import pytest

from footfall.events import MAX_PROP_VALUE_CHARS, MAX_PROPS

ALLOWED_ORIGIN = "https://shop.example"


def entry_payloads(redis_client) -> list[dict]:
    return [json.loads(fields[b"e"]) for _, fields in redis_client.xrange("footfall:events")]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"eventType": "signup", "path": "/join"}, id="eventType names the event"),
        pytest.param({"eventType": "custom", "name": "signup", "path": "/join"}, id="custom with a name"),
        pytest.param({"event_type": "anything", "name": "signup", "path": "/join"}, id="name wins over eventType"),
    ],
)
def test_both_spellings_mean_the_same_event(site, redis_client, mongo_db, clock, drain, body) -> None:
    response = site.track({**body, "props": {"plan": "pro", "seats": 3, "price": 9.5}})
    assert response.status_code == 200
    assert response.json()["status"] == "recorded"
    [payload] = entry_payloads(redis_client)
    queued = payload["page_view"]
    assert (queued["type"], queued["name"], queued["path"]) == ("custom", "signup", "/join")
    assert queued["props"] == {"plan": "pro", "seats": 3, "price": 9.5}

    assert drain() == 1
    [event] = mongo_db.custom_events.find()
    [session] = mongo_db.sessions.find()
    assert (event["name"], event["props"], event["path"], event["route"]) == (
        "signup", {"plan": "pro", "seats": 3, "price": 9.5}, "/join", None)
    assert (event["site"], event["session_id"], event["visitor_id"], event["ts"]) == (
        "default", session["_id"], session["visitor_id"], clock())
    assert event["visitor_number"] == session["visitor_number"] == 1
    assert mongo_db.page_views.count_documents({}) == 0, "a custom event is no page view"
    assert (session["events"], session["event_names"], session["page_views"]) == (1, ["signup"], 0)
    assert session["started_at"] == session["last_seen_at"] == clock()


def test_a_retried_custom_event_counts_once(site, mongo_db, clock, drain) -> None:
    body = {"eventType": "add_to_cart", "path": "/p/1", "event_id": str(uuid.uuid4())}
    for _ in range(3):
        clock.advance(1)
        assert site.track(body).status_code == 200
    assert drain() == 3
    assert mongo_db.custom_events.count_documents({}) == 1
    [session] = mongo_db.sessions.find()
    assert (session["events"], session["event_names"]) == (1, ["add_to_cart"])


def test_events_and_page_views_share_the_visit(site, mongo_db, clock, drain) -> None:
    site.track({"eventType": "page_view", "path": "/pricing?utm_source=news"})
    clock.advance(10)
    site.track({"eventType": "signup", "path": "/pricing", "props": {"plan": "pro"}})
    clock.advance(10)
    site.track({"eventType": "signup", "path": "/pricing"})
    clock.advance(10)
    site.track({"eventType": "download", "path": "/docs"})
    assert drain() == 4
    [session] = mongo_db.sessions.find()
    assert (session["page_views"], session["events"]) == (1, 3)
    assert sorted(session["event_names"]) == ["download", "signup"]
    assert (session["entry_path"], session["exit_path"], session["paths"]) == ("/pricing", "/pricing", ["/pricing"])
    assert session["utm_source"] == "news"
    assert session["last_seen_at"] == clock(), "an event slides the visit's last-seen time"
    assert mongo_db.custom_events.count_documents({"session_id": session["_id"]}) == 3


def test_a_custom_event_keeps_the_session_alive(site, mongo_db, clock, drain, settings) -> None:
    """An event slides the Redis session like a page view: a page view one TTL after the first one,
    but less than one TTL after the event between them, is the same visit."""
    site.track({"eventType": "page_view", "path": "/"})
    clock.advance(settings.session_ttl * 0.75)
    site.track({"eventType": "scroll", "path": "/"})
    clock.advance(settings.session_ttl * 0.75)
    site.track({"eventType": "page_view", "path": "/next"})
    assert drain() == 3
    assert mongo_db.sessions.count_documents({}) == 1
    assert mongo_db.sessions.find_one()["page_views"] == 2


def test_a_page_view_ignores_name_and_props(site, mongo_db, drain) -> None:
    assert site.track({"eventType": "page_view", "path": "/x", "name": 5, "props": [1]}).status_code == 200
    assert drain() == 1
    assert mongo_db.page_views.count_documents({}) == 1
    assert mongo_db.custom_events.count_documents({}) == 0


def test_props_at_the_limits_are_accepted(site, mongo_db, drain) -> None:
    props: dict = {f"k{i:02d}" + "x" * 61: i - 0.5 for i in range(MAX_PROPS - 1)}  # 64-character keys
    props["note"] = "v" * MAX_PROP_VALUE_CHARS
    props["k00" + "x" * 61] = -(2**63)
    body = {"eventType": "e" * 120, "path": "/", "props": props}
    assert len(props) == MAX_PROPS and max(map(len, props)) == 64
    assert site.track(body).status_code == 200
    assert drain() == 1
    assert mongo_db.custom_events.find_one()["props"] == props


CUSTOM = {"eventType": "signup", "path": "/join"}


@pytest.mark.parametrize(
    ("body", "error_mentions"),
    [
        pytest.param({**CUSTOM, "eventType": "e" * 121}, "eventType", id="eventType as name too long"),
        pytest.param({**CUSTOM, "name": ""}, "name", id="empty name"),
        pytest.param({**CUSTOM, "name": "n" * 121}, "name", id="name too long"),
        pytest.param({**CUSTOM, "name": 42}, "name", id="non-string name"),
        pytest.param({"eventType": "signup"}, "path", id="custom event without a path"),
        pytest.param({**CUSTOM, "props": [1, 2]}, "props must be an object", id="props not an object"),
        pytest.param({**CUSTOM, "props": "plan=pro"}, "props must be an object", id="props a string"),
        pytest.param({**CUSTOM, "props": {"plan": {"tier": "pro"}}}, "props['plan']", id="nested object"),
        pytest.param({**CUSTOM, "props": {"tags": ["a"]}}, "props['tags']", id="array value"),
        pytest.param({**CUSTOM, "props": {"ok": True}}, "props['ok']", id="boolean value"),
        pytest.param({**CUSTOM, "props": {"gone": None}}, "props['gone']", id="null value"),
        pytest.param({**CUSTOM, "props": {"note": "v" * 513}}, "props['note']", id="string value too long"),
        pytest.param({**CUSTOM, "props": {"": "x"}}, "props key", id="empty key"),
        pytest.param({**CUSTOM, "props": {"k" * 65: "x"}}, "props key", id="key too long"),
        pytest.param({**CUSTOM, "props": {f"k{i}": i for i in range(31)}}, "31 keys", id="31 keys"),
        pytest.param({**CUSTOM, "props": {"big": 2**63}}, "props['big']", id="integer beyond 64 bits"),
        pytest.param({**CUSTOM, "props": {"nul\u0000key": 1}}, "NUL", id="NUL in a key"),
        pytest.param(b'{"eventType": "signup", "path": "/", "props": {"n": NaN}}', "props['n']", id="NaN"),
        pytest.param(b'{"eventType": "signup", "path": "/", "props": {"n": -Infinity}}', "props['n']",
                     id="infinity"),
        pytest.param(b'{"eventType": "signup", "path": "/", "name": "a\\ud800"}', "surrogate",
                     id="unpaired surrogate"),
    ],
)
def test_bad_custom_events_are_400_and_touch_nothing(site, redis_client, mongo_db, cookies_of,
                                                     body, error_mentions) -> None:
    response = site.track(body, headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert error_mentions in response.json()["error"]
    assert cookies_of(response) == {}
    assert redis_client.dbsize() == 0, "no session, nothing queued"
    assert mongo_db.custom_events.count_documents({}) == 0
