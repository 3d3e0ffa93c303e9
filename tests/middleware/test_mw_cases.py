"""The three cases end to end, through each adapter (a Flask app behind the WSGI middleware, a
Starlette app behind the ASGI one), on the real Redis and MongoDB-wire servers. Forged and expired
cookies, a session Redis no longer knows, key rotation, and what the wrapped app reads at
``environ["footfall.visit"]`` / ``scope["footfall.visit"]``.

Each visit that starts queues one entry on the ``footfall:events`` stream, in the same round trip
that decides it; a request of a continuing session queues nothing. MongoDB is checked after the
``drain`` fixture wrote the queue."""

from __future__ import annotations

import time
import uuid

import pytest

from footfall.drain import Drain
from footfall.middleware.core import Case
from footfall.stores.redis_sessions import session_key

FULL_TTL_MS = 30 * 60 * 1000


def session_docs(mongo_db) -> list[dict]:
    return list(mongo_db.sessions.find().sort("started_at", 1))


def session_keys(redis_client) -> list[bytes]:
    return redis_client.keys("footfall:session:*")


def test_new_visitor(site, cookies_of, redis_client, mongo_db, clock, queued, drain) -> None:
    response = site.client.get("/", headers={"Referer": "https://search.example/?q=shop"})
    assert response.status_code == 200
    assert b"home" in response.content

    visit = site.last_visit
    assert visit.case is Case.NEW_VISITOR
    assert (visit.is_new_visitor, visit.is_new_session) == (True, True)
    assert uuid.UUID(visit.visitor_id).version == 4
    assert set(cookies_of(response)) == {"session", "visitor_id"}

    stored = redis_client.hgetall(session_key(visit.session_id))
    assert stored[b"visitor_id"].decode() == visit.visitor_id
    assert stored[b"site"] == b"default"
    assert int(stored[b"last_seen_ms"]) == int(clock().timestamp() * 1000)
    assert 0 < redis_client.pttl(session_key(visit.session_id)) <= FULL_TTL_MS

    assert queued() == 1, "the visit start waits on the stream"
    assert mongo_db.sessions.count_documents({}) == 0, "the request itself wrote nothing to MongoDB"
    assert drain() == 1
    assert queued() == 0, "acknowledged and deleted once written"
    [doc] = session_docs(mongo_db)
    assert doc["_id"] == visit.session_id
    assert doc["visitor_id"] == visit.visitor_id
    assert doc["site"] == "default"
    assert doc["started_at"] == doc["last_seen_at"] == clock()
    assert doc["referrer"] == "https://search.example/?q=shop"
    assert doc["user_agent"] == site.client.headers["User-Agent"]
    assert doc["page_views"] == 0, "a page GET is no page view unless server_pageviews is on"


def test_same_session_slides_ttl(site, cookies_of, redis_client, mongo_db, clock, queued, drain) -> None:
    site.client.get("/")
    first = site.last_visit
    key = session_key(first.session_id)
    redis_client.pexpire(key, 5_000)  # as if the session had been idle for most of its TTL
    clock.advance(25 * 60)

    response = site.client.get("/page/two")
    second = site.last_visit
    assert second.case is Case.SAME_SESSION
    assert (second.visitor_id, second.session_id) == (first.visitor_id, first.session_id)
    assert (second.is_new_visitor, second.is_new_session) == (False, False)
    assert redis_client.pttl(key) > FULL_TTL_MS - 10_000, "TTL slid back to full"
    assert int(redis_client.hget(key, "last_seen_ms")) == int(clock().timestamp() * 1000)
    assert set(cookies_of(response)) == {"session"}, "only the session cookie is re-issued"
    assert queued() == 1, "the same-session request queued nothing"
    assert session_keys(redis_client) == [key.encode()]
    assert drain() == 1
    assert len(session_docs(mongo_db)) == 1, "no new session recorded"


def _expire_by_delete(redis_client, session_id: str) -> None:
    redis_client.delete(session_key(session_id))


def _expire_by_flush(redis_client, session_id: str) -> None:
    redis_client.flushdb()


@pytest.mark.parametrize(
    "forget",
    [
        pytest.param(_expire_by_delete, id="session key deleted"),
        pytest.param(_expire_by_flush, id="redis emptied"),
    ],
)
def test_session_cookie_redis_no_longer_knows(site, cookies_of, redis_client, mongo_db, drain, forget) -> None:
    site.client.get("/")
    first = site.last_visit
    assert drain() == 1  # before FLUSHDB empties the stream too
    forget(redis_client, first.session_id)

    response = site.client.get("/page/back")
    second = site.last_visit
    assert second.case is Case.EXPIRED_SESSION
    assert second.visitor_id == first.visitor_id, "visitor id reused"
    assert second.session_id != first.session_id
    assert (second.is_new_visitor, second.is_new_session) == (False, True)
    assert set(cookies_of(response)) == {"session", "visitor_id"}, "visitor cookie re-issued by design"
    assert redis_client.exists(session_key(second.session_id)) == 1
    # A drain of its own: FLUSHDB also removed the stream's consumer group, and a Drain that made
    # the group once does not make it again (reported; footfall/drain.py is not this suite's).
    assert Drain(redis_client, mongo_db, consumer="after-forget").drain_all() == 1
    docs = session_docs(mongo_db)
    assert sorted(d["_id"] for d in docs) == sorted([first.session_id, second.session_id])
    assert {d["visitor_id"] for d in docs} == {first.visitor_id}


def test_session_expires_in_redis_after_ttl(make_site, cookies_of, redis_client, mongo_db) -> None:
    """Real expiry: with a 1 s session TTL the key is gone after ~1 s and the next request is an
    expired session for the same visitor."""
    site = make_site(session_ttl=1)
    response = site.client.get("/")
    first = site.last_visit
    issued = site.jar()
    assert cookies_of(response)["session"][1]["max-age"] == "1"
    assert 0 < redis_client.pttl(session_key(first.session_id)) <= 1000

    time.sleep(1.05)
    assert redis_client.exists(session_key(first.session_id)) == 0

    for name, value in issued.items():  # replay both cookies, whatever a jar does with Max-Age
        site.set_cookie(site.client, name, value)
    site.client.get("/")
    second = site.last_visit
    assert second.visitor_id == first.visitor_id
    assert second.session_id != first.session_id
    assert second.case is Case.EXPIRED_SESSION


def test_replayed_expired_session_cookie(site, redis_client) -> None:
    """A browser would drop the session cookie at Max-Age; a client replaying a validly signed one
    after the session ended in Redis gets a new session, never the old one back."""
    site.client.get("/")
    first = site.last_visit
    replay = site.jar()
    redis_client.delete(session_key(first.session_id))

    other = site.new_client()
    for name, value in replay.items():
        site.set_cookie(other, name, value)
    other.get("/")
    second = site.last_visit
    assert second.case is Case.EXPIRED_SESSION
    assert second.visitor_id == first.visitor_id
    assert second.session_id != first.session_id


def test_session_cookie_of_another_visitor_is_not_continued(site, redis_client, mongo_db, drain) -> None:
    site.client.get("/")
    alice = site.last_visit
    bob = site.new_client()
    bob.get("/")
    bob_first = site.last_visit

    site.set_cookie(bob, "session", site.jar()["session"])  # Alice's validly signed, active session
    bob.get("/")
    bob_second = site.last_visit
    assert bob_second.case is Case.EXPIRED_SESSION
    assert bob_second.visitor_id == bob_first.visitor_id
    assert bob_second.session_id not in (alice.session_id, bob_first.session_id)
    assert redis_client.hget(session_key(alice.session_id), "visitor_id").decode() == alice.visitor_id
    assert drain() == 3
    docs = {doc["_id"]: doc["visitor_id"] for doc in session_docs(mongo_db)}
    assert docs == {alice.session_id: alice.visitor_id, bob_first.session_id: bob_first.visitor_id,
                    bob_second.session_id: bob_first.visitor_id}


def _tamper(value: str) -> str:
    return value[:-2] + ("AA" if not value.endswith("AA") else "BB")


@pytest.mark.parametrize(
    ("tampered", "expected_case", "keeps_visitor"),
    [
        pytest.param("session", Case.EXPIRED_SESSION, True, id="forged session cookie starts a new session"),
        pytest.param("visitor_id", Case.NEW_VISITOR, False, id="forged visitor cookie is a new visitor"),
        pytest.param("both", Case.NEW_VISITOR, False, id="both cookies forged"),
    ],
)
def test_forged_cookie_on_the_wire(site, mongo_db, drain, tampered, expected_case, keeps_visitor) -> None:
    site.client.get("/")
    first = site.last_visit
    jar = site.jar()
    for name in (("session", "visitor_id") if tampered == "both" else (tampered,)):
        site.set_cookie(site.client, name, _tamper(jar[name]))

    response = site.client.get("/")
    assert response.status_code == 200
    second = site.last_visit
    assert second.case is expected_case
    assert second.session_id != first.session_id
    assert (second.visitor_id == first.visitor_id) is keeps_visitor
    assert drain() == 2
    assert [doc["_id"] for doc in session_docs(mongo_db)] == [first.session_id, second.session_id]


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("session=garbage; visitor_id=garbage", id="unsigned garbage"),
        pytest.param("session=a.b.c.d; visitor_id=....", id="dots only"),
        pytest.param("visitor_id=" + "x" * 4000, id="oversized"),
        pytest.param('session="\\"quoted\\""; visitor_id=%FF%FE', id="quoted and percent-encoded bytes"),
    ],
)
def test_garbage_cookie_header_never_fails_the_request(site, cookies_of, cookie) -> None:
    response = site.new_client().get("/", headers={"Cookie": cookie})
    assert site.heard[-1]["cookie"] == cookie, "the header reached the app as sent"
    assert response.status_code == 200
    assert site.last_visit.case is Case.NEW_VISITOR
    assert set(cookies_of(response)) == {"session", "visitor_id"}


def test_key_rotation_end_to_end(make_site, settings, cookies_of, mongo_db, drain) -> None:
    old_site = make_site(secret_key="old-key-for-rotation-test")
    old_site.client.get("/")
    first = old_site.last_visit
    issued = old_site.jar()

    rotated = make_site(
        secret_key="new-key-for-rotation-test", secret_key_fallbacks=("old-key-for-rotation-test",)
    )
    for name, value in issued.items():
        rotated.set_cookie(rotated.client, name, value)
    response = rotated.client.get("/")
    second = rotated.last_visit
    assert second.case is Case.SAME_SESSION, "cookies signed with the fallback key are accepted"
    assert (second.visitor_id, second.session_id) == (first.visitor_id, first.session_id)
    reissued, _ = cookies_of(response)["session"]
    assert reissued != issued["session"], "re-signed with the new key"

    new_only = make_site(secret_key="new-key-for-rotation-test")
    new_only.set_cookie(new_only.client, "session", reissued)
    new_only.set_cookie(new_only.client, "visitor_id", issued["visitor_id"])  # still the old key's signature
    new_only.client.get("/")
    third = new_only.last_visit
    assert third.case is Case.NEW_VISITOR, "without the fallback the old visitor cookie is absent"
    assert drain() == 2, "the first visit and the third, the rotated site's request continued one"
    assert sorted(doc["_id"] for doc in session_docs(mongo_db)) == sorted([first.session_id, third.session_id])


def test_environ_exposes_the_visit_to_the_app(site) -> None:
    first = site.client.get("/whoami").json()
    assert first["is_new_visitor"] is True and first["is_new_session"] is True
    assert uuid.UUID(first["visitor_id"]).version == 4
    assert len(first["session_id"]) >= 22

    second = site.client.get("/whoami").json()
    assert second == {**first, "is_new_visitor": False, "is_new_session": False}


def test_many_requests_one_session(site, redis_client, mongo_db, clock, queued, drain) -> None:
    for minute in range(10):
        clock.advance(60)
        site.client.get(f"/page/{minute}")
    assert {visit.session_id for visit in site.seen} == {site.seen[0].session_id}
    assert [visit.case for visit in site.seen] == [Case.NEW_VISITOR] + [Case.SAME_SESSION] * 9
    assert len(session_keys(redis_client)) == 1
    assert queued() == 1, "only the visit start was queued"
    assert int(redis_client.hget(session_key(site.seen[0].session_id), "last_seen_ms")) == int(
        clock().timestamp() * 1000)
    assert drain() == 1
    assert mongo_db.sessions.count_documents({}) == 1


def test_separate_browsers_are_separate_visitors(site, mongo_db, drain) -> None:
    site.client.get("/")
    site.new_client().get("/")
    first, second = site.seen
    assert first.visitor_id != second.visitor_id
    assert first.session_id != second.session_id
    assert drain() == 2
    assert {doc["visitor_id"] for doc in session_docs(mongo_db)} == {first.visitor_id, second.visitor_id}


def test_non_utf8_cookie_bytes_never_fail_the_request(site, cookies_of) -> None:
    """WSGI hands the ``Cookie`` header over as latin-1, ASGI as bytes the middleware decodes as
    latin-1; bytes that are not UTF-8 made Werkzeug's ``parse_cookie`` raise (a 500) before footfall's
    fix."""
    response = site.new_client().get("/", headers={"Cookie": b"visitor_id=\xe9\xff; session=\xc3"})
    assert site.heard[-1]["cookie"] is not None and not site.heard[-1]["cookie"].isascii()
    assert response.status_code == 200
    assert site.last_visit.case is Case.NEW_VISITOR
    assert set(cookies_of(response)) == {"session", "visitor_id"}


def test_foreign_non_utf8_cookie_does_not_hide_footfall_cookies(site) -> None:
    site.client.get("/")
    first = site.last_visit
    jar = site.jar()
    header = f"prefs=caf\xe9; session={jar['session']}; visitor_id={jar['visitor_id']}".encode("latin-1")
    response = site.new_client().get("/", headers={"Cookie": header})
    assert response.status_code == 200
    second = site.last_visit
    assert second.case is Case.SAME_SESSION
    assert second.session_id == first.session_id


def test_request_body_reaches_the_app_untouched(site, cookies_of) -> None:
    """The middleware reads the body of the track endpoint only; a tracked POST keeps its body."""
    body = b"\x00binary\xff" * 4096  # bigger than the track endpoint's limit, and not text
    response = site.client.post("/echo", content=body)
    assert response.status_code == 200
    assert response.content == body
    assert site.last_visit.case is Case.NEW_VISITOR
    assert set(cookies_of(response)) == {"session", "visitor_id"}
