"""The drain on the shared real servers: idempotent writes, partial failures, codec errors."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from pymongo.database import Database

from footfall.drain import DEAD_LETTER_KEY, Drain, backlog, next_batch_size
from footfall.errors import StoreUnavailable
from footfall.middleware.tracker import RequestFacts, Tracker, page_view_fields
from footfall.settings import Settings
from footfall.stores import build_tracker
from footfall.stores.event_codec import EntryError, QueuedRecords, decode_entry, encode_payload
from footfall.stores.mongo_writer import ensure_indexes, write_batch
from footfall.stores.redis_sessions import COUNTERS_KEY, STREAM_KEY

BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
           "Version/17.5 Safari/605.1.15")
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def tracker(settings: Settings):
    tracker = build_tracker(settings)
    yield tracker
    tracker.close()


def facts(cookie: str | None = None, path: str = "/") -> RequestFacts:
    return RequestFacts("POST", path, "", BROWSER, cookie, "https://news.example/")


def page_view(path: str, event_id: str | None = None, site: str = "web") -> dict[str, str]:
    return page_view_fields(site=site, path=path, query="", referrer="", title="", event_id=event_id)


def cookie_header(tracker: Tracker, visit) -> str:
    parts = [value.split(";")[0] for value in tracker.cookies.set_cookie_headers(visit)]
    return "; ".join(parts)


def test_one_visit_with_three_page_views_is_one_session_document(tracker, drain, mongo_db) -> None:
    first = tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/"))
    jar = cookie_header(tracker, first)
    tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=30), page_view=page_view("/pricing"))
    tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=90), page_view=page_view("/signup"))
    assert drain() == 3

    session = mongo_db.sessions.find_one({"_id": first.session_id})
    assert session["visitor_id"] == first.visitor_id
    assert session["page_views"] == 3
    assert (session["entry_path"], session["exit_path"]) == ("/", "/signup")
    assert session["started_at"] == T0
    assert session["last_seen_at"] == T0 + timedelta(seconds=90)
    assert session["referrer"] == "https://news.example/"
    assert session["user_agent"] == BROWSER
    assert mongo_db.page_views.count_documents({"session_id": first.session_id}) == 3


def test_the_same_event_id_three_times_is_stored_once(tracker, drain, mongo_db) -> None:
    event_id = str(uuid.uuid4())
    first = tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/a", event_id))
    jar = cookie_header(tracker, first)
    for second in (1, 2):
        tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=second), page_view=page_view("/a", event_id))
    assert drain() == 3
    assert mongo_db.page_views.count_documents({"_id": event_id}) == 1
    assert mongo_db.sessions.find_one({"_id": first.session_id})["page_views"] == 1


def test_a_batch_written_twice_counts_once(tracker, mongo_db, redis_client, settings) -> None:
    """A drain that wrote a batch but died before acknowledging it: the next one writes it again."""
    for i in range(5):
        tracker.resolve(facts(), site="web", now=T0 + timedelta(seconds=i), page_view=page_view(f"/p{i}"))
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
    crashed = Drain(client, mongo_db, consumer="crashed", claim_idle=0.001)
    crashed.ensure_group()
    entries = client.xreadgroup("footfall-drain", "crashed", {STREAM_KEY: ">"}, count=100)[0][1]
    write_batch(mongo_db, [(eid.decode(), decode_entry(fields)) for eid, fields in entries])  # no ack: "crash"
    survivor = Drain(client, mongo_db, consumer="survivor", claim_idle=0.001)
    assert survivor.drain_all() == 5  # claimed from the dead consumer
    assert mongo_db.page_views.count_documents({}) == 5
    assert mongo_db.sessions.count_documents({}) == 5
    assert sum(s["page_views"] for s in mongo_db.sessions.find()) == 5
    assert int(client.hget(COUNTERS_KEY, "written")) == 5
    assert backlog(client).length == 0
    client.close()


def test_an_undecodable_entry_is_set_aside_and_the_rest_stored(tracker, drain, mongo_db, redis_client) -> None:
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/before"))
    redis_client.xadd(STREAM_KEY, {"e": "{not json", "sid": "x", "new": "1"})
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/after"))
    assert drain() == 3
    assert sorted(d["path"] for d in mongo_db.page_views.find()) == ["/after", "/before"]
    assert int(redis_client.hget(COUNTERS_KEY, "failed")) == 1
    assert int(redis_client.hget(COUNTERS_KEY, "written")) == 2
    dead = redis_client.xrange(DEAD_LETTER_KEY)
    assert len(dead) == 1 and dead[0][1][b"reason"].startswith(b"undecodable")
    assert redis_client.xlen(STREAM_KEY) == 0


def test_a_document_mongodb_rejects_fails_alone(tracker, drain, mongo_db: Database, redis_client) -> None:
    """Property 6: one invalid document in a batch; MongoDB's own validator rejects it."""
    ensure_indexes(mongo_db)
    mongo_db.command("collMod", "page_views", validator={
        "$jsonSchema": {"properties": {"path": {"bsonType": "string", "maxLength": 100}}}})
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/fine"))
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/" + "x" * 300))
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/also-fine"))
    assert drain() == 3
    assert sorted(d["path"] for d in mongo_db.page_views.find()) == ["/also-fine", "/fine"]
    assert int(redis_client.hget(COUNTERS_KEY, "failed")) == 1
    assert int(redis_client.hget(COUNTERS_KEY, "written")) == 2
    (entry_id, fields), = redis_client.xrange(DEAD_LETTER_KEY)
    assert b"page_views" in fields[b"reason"]
    assert json.loads(fields[b"e"])["page_view"]["path"].startswith("/xxx")


def test_a_session_start_without_a_page_view_is_recorded(tracker, drain, mongo_db) -> None:
    visit = tracker.resolve(facts(), site="web", now=T0)
    assert drain() == 1
    session = mongo_db.sessions.find_one({"_id": visit.session_id})
    assert (session["page_views"], session["started_at"], session["site"]) == (0, T0, "web")


def test_a_same_session_request_without_a_page_view_queues_nothing(tracker, redis_client) -> None:
    first = tracker.resolve(facts(), site="web", now=T0)
    assert redis_client.xlen(STREAM_KEY) == 1
    tracker.resolve(facts(cookie_header(tracker, first)), site="web", now=T0 + timedelta(seconds=5))
    assert redis_client.xlen(STREAM_KEY) == 1


def test_page_views_arriving_out_of_order_keep_entry_and_exit(tracker, drain, mongo_db) -> None:
    first = tracker.resolve(facts(), site="web", now=T0 + timedelta(seconds=60), page_view=page_view("/middle"))
    drain()
    jar = cookie_header(tracker, first)
    tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=120), page_view=page_view("/last"))
    tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=61), page_view=page_view("/second"))
    drain()
    session = mongo_db.sessions.find_one({"_id": first.session_id})
    assert (session["entry_path"], session["exit_path"], session["page_views"]) == ("/middle", "/last", 3)


OLD_ENTRY = ('{"v":1,"site":"web","visitor_id":"v1","ts":1777626000000,"referrer":"https://www.news.example/a",'
             '"user_agent":"' + BROWSER + '","page_view":{"event_id":"0b9f1a52-5d0c-4b1e-9a57-1f0c2f6a8e11",'
             '"site":"web","path":"/old","query":"utm_source=mail","referrer":"https://www.news.example/a","title":"T"}}')


def entry(*, new: str = "1", view: dict | None = None, **top) -> dict[str, str]:
    """Stream entry fields whose payload is the old format with ``top`` and ``view`` keys set."""
    payload = json.loads(OLD_ENTRY)
    payload.update(top)
    payload["page_view"].update(view or {})
    return {"e": json.dumps(payload), "sid": "s1", "new": new}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        pytest.param({"sid": "s", "new": "1"}, "no 'e'", id="missing payload"),
        pytest.param({"e": "[]", "sid": "s", "new": "1"}, "not a JSON object", id="payload not an object"),
        pytest.param({"e": '{"v": 99}', "sid": "s", "new": "1"}, "format version", id="unknown version"),
        pytest.param({"e": encode_payload(site="w", visitor_id="v", at=T0, referrer="", user_agent="",
                                          page_view=None), "new": "1"}, "no 'sid'", id="missing session id"),
        pytest.param({"e": encode_payload(site="w", visitor_id="v", at=T0, referrer="", user_agent="",
                                          page_view=None), "sid": "s", "new": "0"}, "neither", id="nothing recorded"),
        pytest.param({"e": json.dumps({"v": 1, "ts": "noon", "visitor_id": "v", "user_agent": "", "site": "w",
                                       "referrer": ""}), "sid": "s", "new": "1"}, "milliseconds", id="bad time"),
        pytest.param(entry(host=5), "'host'", id="host not a string"),
        pytest.param(entry(country=["DE"]), "'country'", id="country not a string"),
        pytest.param(entry(city=1), "'city'", id="city not a string"),
        pytest.param(entry(view={"route": 7}), "'route'", id="route not a string"),
        pytest.param(entry(view={"type": "click"}), "type", id="unknown type"),
        pytest.param(entry(view={"type": "custom"}), "name", id="custom event without a name"),
        pytest.param(entry(view={"type": "custom", "name": "x", "props": {"a": {"b": 1}}}), "string or a number",
                     id="custom event with nested props"),
        pytest.param(entry(view={"type": "custom", "name": "x", "props": "a=1"}), "props", id="props not an object"),
        pytest.param(entry(view={"title": "\ud800"}), "surrogate", id="unpaired surrogate"),
    ],
)
def test_decode_entry_names_the_problem(fields: dict[str, str], problem: str) -> None:
    with pytest.raises(EntryError, match=problem):
        decode_entry(fields)


def test_encode_then_decode_round_trips() -> None:
    payload = encode_payload(site="w", visitor_id="v1", at=T0, referrer="r", user_agent="ua",
                             page_view=page_view("/x", "3f7c3a3e-6f0e-4b0a-9c1e-0a1b2c3d4e5f", site="w"))
    records = decode_entry({b"e": payload.encode(), b"sid": b"s1", b"new": b"1"})
    assert records.session_start is not None and records.page_view is not None
    assert (records.session_start.session_id, records.session_start.started_at) == ("s1", T0)
    assert (records.page_view.event_id, records.page_view.path, records.page_view.ts) == (
        "3f7c3a3e-6f0e-4b0a-9c1e-0a1b2c3d4e5f", "/x", T0)


def test_the_drain_recreates_its_group_after_redis_lost_it(tracker, drain, mongo_db, redis_client) -> None:
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/one"))
    assert drain() == 1
    redis_client.flushdb()  # the stream and its consumer group are gone
    tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/two"))
    with pytest.raises(StoreUnavailable, match="NOGROUP"):
        drain()
    assert drain() == 1  # the next step creates the group again and reads what was queued
    assert sorted(d["path"] for d in mongo_db.page_views.find()) == ["/one", "/two"]


def test_an_entry_queued_by_the_previous_version_still_decodes_and_drains(drain, mongo_db, redis_client) -> None:
    """Payloads without host, country, city, route or type (what the previous version queued)."""
    records = decode_entry({"e": OLD_ENTRY, "sid": "s-old", "new": "1", "vn": "7"})
    view, start = records.page_view, records.session_start
    assert records.custom_event is None
    assert (view.route, view.host, view.country, view.city) == (None, "", None, None)
    assert (start.host, start.country, start.city) == ("", None, None)
    redis_client.xadd(STREAM_KEY, {"e": OLD_ENTRY, "sid": "s-old", "new": "1", "vn": "7"})
    assert drain() == 1
    session = mongo_db.sessions.find_one({"_id": "s-old"})
    assert (session["referrer_host"], session["utm_source"], session["device"], session["browser"], session["os"]) == (
        "news.example", "mail", "desktop", "Safari", "Mac OS X")
    assert (session["country"], session["paths"], session["routes"], session["events"]) == (None, ["/old"], [], 0)
    page = mongo_db.page_views.find_one()
    assert (page["route"], page["device"], page["country"], page["visitor_number"]) == (None, "desktop", None, 7)


def test_encode_then_decode_round_trips_the_new_fields() -> None:
    view = page_view_fields(site="w", path="/u/42", query="", referrer="", title="", event_id=None, route="/u/<id>")
    payload = encode_payload(site="w", visitor_id="v1", at=T0, referrer="r", user_agent="ua", page_view=view,
                             host="shop.example", country="FR", city="Lyon")
    records = decode_entry({"e": payload, "sid": "s1", "new": "1"})
    assert (records.session_start.host, records.session_start.country, records.session_start.city) == (
        "shop.example", "FR", "Lyon")
    assert (records.page_view.route, records.page_view.country, records.page_view.city) == ("/u/<id>", "FR", "Lyon")
    event = page_view_fields(site="w", path="/join", query="", referrer="", title="", event_id=None, name="signup",
                             props={"plan": "pro", "seats": 3})
    records = decode_entry({"e": encode_payload(site="w", visitor_id="v1", at=T0, referrer="", user_agent="",
                                                page_view=event), "sid": "s1", "new": "0"})
    assert records.page_view is None and records.session_start is None
    assert (records.custom_event.name, records.custom_event.props, records.custom_event.path) == (
        "signup", {"plan": "pro", "seats": 3}, "/join")
    assert records.custom_event.event_id == event["event_id"]


IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


def start_and_view(session_id: str) -> tuple[QueuedRecords, QueuedRecords]:
    """A visit start (no page view: a server-rendered page queues it after the start) and its page
    view two seconds later, sent with another User-Agent and country than the start's."""
    start = encode_payload(site="web", visitor_id="v1", at=T0, referrer="https://www.news.example/story",
                           user_agent=IPHONE, page_view=None, host="shop.example", country="DE", city="Berlin")
    view = encode_payload(site="web", visitor_id="v1", at=T0 + timedelta(seconds=2), referrer="https://shop.example/",
                          user_agent=BROWSER, host="shop.example", country="FR", city="Paris",
                          page_view=page_view_fields(site="web", path="/landing", query="utm_source=mail&utm_medium=x",
                                                     referrer="https://shop.example/", title="", event_id=None,
                                                     route="/landing"))
    return (decode_entry({"e": start, "sid": session_id, "new": "1", "vn": "3"}),
            decode_entry({"e": view, "sid": session_id, "new": "0", "vn": "3"}))


def test_a_page_view_arriving_before_its_start_gives_the_same_session(mongo_db) -> None:
    start, view = start_and_view("in-order")
    write_batch(mongo_db, [("1-0", start)])
    write_batch(mongo_db, [("2-0", view)])
    start, view = start_and_view("reversed")
    write_batch(mongo_db, [("2-0", view)])
    write_batch(mongo_db, [("1-0", start)])

    in_order = mongo_db.sessions.find_one({"_id": "in-order"}, {"_id": 0, "count_tokens": 0, "rollup_dirty": 0})
    reversed_ = mongo_db.sessions.find_one({"_id": "reversed"}, {"_id": 0, "count_tokens": 0, "rollup_dirty": 0})
    assert reversed_ == in_order
    assert (in_order["started_at"], in_order["last_seen_at"], in_order["page_views"]) == (
        T0, T0 + timedelta(seconds=2), 1)
    assert (in_order["referrer"], in_order["referrer_host"]) == ("https://www.news.example/story", "news.example")
    assert (in_order["device"], in_order["browser"], in_order["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert (in_order["country"], in_order["city"], in_order["user_agent"]) == ("DE", "Berlin", IPHONE)
    assert (in_order["utm_source"], in_order["utm_medium"], in_order["utm_campaign"]) == ("mail", "x", None)
    assert (in_order["entry_path"], in_order["paths"], in_order["routes"]) == ("/landing", ["/landing"], ["/landing"])
    assert (in_order["events"], in_order["event_names"], in_order["visitor_number"]) == (0, [], 3)
    page = mongo_db.page_views.find_one({"session_id": "reversed"})
    assert (page["device"], page["browser"], page["os"], page["country"], page["route"]) == (
        "desktop", "Safari", "Mac OS X", "FR", "/landing"), "a page view keeps its own request's facts"


def test_utm_fields_follow_the_first_page_view_by_time(tracker, drain, mongo_db) -> None:
    first = tracker.resolve(facts(), site="web", now=T0 + timedelta(seconds=60),
                            page_view=page_view_fields(site="web", path="/b", query="utm_source=later", referrer="",
                                                       title="", event_id=None))
    drain()
    tracker.resolve(facts(cookie_header(tracker, first)), site="web", now=T0 + timedelta(seconds=61),
                    page_view=page_view_fields(site="web", path="/a", query="utm_campaign=x", referrer="", title="",
                                               event_id=None, route="/<page>"))
    drain()
    session = mongo_db.sessions.find_one({"_id": first.session_id})
    assert (session["utm_source"], session["utm_campaign"]) == ("later", None), "the earlier view's UTM fields stay"
    assert sorted(session["paths"]) == ["/a", "/b"] and session["routes"] == ["/<page>"]


def test_a_visit_started_by_a_custom_event(tracker, drain, mongo_db) -> None:
    event = page_view_fields(site="web", path="/", query="", referrer="", title="", event_id=None, name="open",
                             props={"n": 1})
    visit = tracker.resolve(facts(), site="web", now=T0, page_view=event)
    assert drain() == 1
    session = mongo_db.sessions.find_one({"_id": visit.session_id})
    assert (session["page_views"], session["events"], session["event_names"]) == (0, 1, ["open"])
    assert (session["started_at"], session["referrer_host"], session["device"]) == (T0, "news.example", "desktop")
    assert (session["utm_source"], session["paths"], session["start_recorded"]) == (None, [], True)
    assert mongo_db.custom_events.find_one()["session_id"] == visit.session_id


@pytest.mark.parametrize(("current", "got", "expected"), [
    pytest.param(500, 500, 1000, id="a full read doubles the next"),
    pytest.param(4000, 4000, 5000, id="up to the largest batch"),
    pytest.param(5000, 5000, 5000, id="and stays there while the backlog lasts"),
    pytest.param(2000, 1999, 500, id="a read that is not full: caught up, back to the batch size"),
])
def test_next_batch_size(current: int, got: int, expected: int) -> None:
    assert next_batch_size(current, got, 500, 5000) == expected


def test_a_backlog_is_drained_in_growing_batches_and_counted_once(tracker, mongo_db, redis_client) -> None:
    first = tracker.resolve(facts(), site="web", now=T0, page_view=page_view("/"))
    jar = cookie_header(tracker, first)
    for n in range(1, 40):
        tracker.resolve(facts(jar), site="web", now=T0 + timedelta(seconds=n), page_view=page_view(f"/p{n}"))
    drain = Drain(redis_client, mongo_db, consumer="growing", batch_size=4, max_batch_size=16)
    sizes = []
    while n := drain.step(block=False):
        sizes.append(n)
    assert sizes == [4, 8, 16, 12]
    session = mongo_db.sessions.find_one({"_id": first.session_id})
    assert (session["page_views"], session["entry_path"], session["exit_path"]) == (40, "/", "/p39")
