"""``POST /analytics/track``, answered by the middleware itself (either adapter): recording, idempotency, every 4xx,
CORS with credentials; and server-side page views (``server_pageviews=True``).

A page view queues one entry on the ``footfall:events`` stream (with the visit start when it starts
one); the ``drain`` fixture writes the queue to MongoDB before a test looks there."""

from __future__ import annotations

import json
import uuid

import pytest

from footfall.events import MAX_BODY_BYTES
from footfall.middleware.core import Case

ALLOWED_ORIGIN = "https://shop.example"  # the ``settings`` fixture's CORS origin
OTHER_ORIGIN = "https://evil.example"
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PAGE_VIEW = {"eventType": "page_view", "path": "/x", "referrer": "https://ref.example/", "title": "X",
             "site": "shop"}


def assert_untouched(redis_client, mongo_db) -> None:
    assert redis_client.dbsize() == 0, "no session, nothing queued"
    assert mongo_db.sessions.count_documents({}) == 0
    assert mongo_db.page_views.count_documents({}) == 0


def test_page_view_is_recorded(site, cookies_of, redis_client, mongo_db, clock, queued, drain) -> None:
    response = site.track(PAGE_VIEW)
    assert response.status_code == 200
    assert response.json() == {"status": "recorded", "visitor_number": 1, "visitor_label": "#0001"}
    assert response.headers["Content-Type"] == "application/json"
    assert set(cookies_of(response)) == {"session", "visitor_id"}
    assert site.seen == [], "the wrapped app never sees the track endpoint"

    assert queued() == 1, "the visit start and the page view share one entry"
    assert mongo_db.page_views.count_documents({}) == 0, "the request wrote nothing to MongoDB"
    assert drain() == 1
    [view] = mongo_db.page_views.find()
    [session] = mongo_db.sessions.find()
    assert view["session_id"] == session["_id"]
    assert view["visitor_id"] == session["visitor_id"]
    assert (view["site"], view["path"], view["query"]) == ("shop", "/x", "")
    assert (view["referrer"], view["title"], view["ts"]) == ("https://ref.example/", "X", clock())
    assert (session["site"], session["page_views"], session["entry_path"]) == ("shop", 1, "/x")
    assert (session["exit_path"], session["first_view_at"], session["last_view_at"]) == ("/x", clock(), clock())
    assert (session["referrer"], session["started_at"]) == ("https://ref.example/", clock())
    assert redis_client.exists(f"footfall:session:{session['_id']}") == 1


def test_event_type_spelling_and_absolute_url(site, mongo_db, drain) -> None:
    body = {"event_type": "page_view", "path": "https://shop.example/cart?utm_source=mail#top"}
    assert site.track(body).status_code == 200
    assert drain() == 1
    [view] = mongo_db.page_views.find()
    assert (view["path"], view["query"], view["site"]) == ("/cart", "utm_source=mail", "default")


def test_track_events_share_the_page_session(site, mongo_db, clock, cookies_of, queued, drain) -> None:
    site.client.get("/")
    page_visit = site.last_visit
    clock.advance(5)
    response = site.track({"eventType": "page_view", "path": "/"})
    assert response.status_code == 200
    assert set(cookies_of(response)) == {"session"}, "same session: only the session cookie"
    assert queued() == 2, "the page's visit start, then the page view"
    assert drain() == 2
    [view] = mongo_db.page_views.find()
    assert (view["session_id"], view["visitor_id"]) == (page_visit.session_id, page_visit.visitor_id)
    assert mongo_db.sessions.count_documents({}) == 1


@pytest.mark.parametrize(
    "drain_each",
    [pytest.param(False, id="retries in one drain batch"), pytest.param(True, id="retries in separate batches")],
)
def test_same_event_id_three_times_is_stored_once(site, mongo_db, clock, queued, drain, drain_each) -> None:
    body = {**PAGE_VIEW, "event_id": str(uuid.uuid4())}
    handled = 0
    for _ in range(3):
        clock.advance(1)
        assert site.track(body).json() == {"status": "recorded", "visitor_number": 1, "visitor_label": "#0001"}
        if drain_each:
            handled += drain()
    assert queued() == (0 if drain_each else 3), "each retry is queued; the store dedupes"
    handled += drain()
    assert handled == 3
    [view] = mongo_db.page_views.find()
    assert view["_id"] == body["event_id"]
    [session] = mongo_db.sessions.find()
    assert session["page_views"] == 1, "a retry is not counted into the session again"
    assert session["first_view_at"] == session["last_view_at"] == view["ts"]


def test_different_event_ids_are_stored_separately(site, mongo_db, drain) -> None:
    for _ in range(3):
        site.track({**PAGE_VIEW, "event_id": str(uuid.uuid4())})
    assert drain() == 3
    assert mongo_db.page_views.count_documents({}) == 3
    assert mongo_db.sessions.find_one()["page_views"] == 3


def test_session_page_view_fields_follow_view_time_across_batches(site, mongo_db, clock, drain) -> None:
    """Entry and exit page are the earliest and latest view by time, whichever batch brings them."""
    for name in ("a", "b", "c"):
        clock.advance(30)
        site.track({"eventType": "page_view", "path": f"/{name}"})
        assert drain() == 1
    [session] = mongo_db.sessions.find()
    assert (session["page_views"], session["entry_path"], session["exit_path"]) == (3, "/a", "/c")
    assert session["last_view_at"] == clock()


@pytest.mark.parametrize(
    ("body", "status", "error_mentions"),
    [
        pytest.param(b"{not json", 400, "JSON", id="malformed JSON"),
        pytest.param(b"", 400, "JSON", id="empty body"),
        pytest.param(b"\xff\xfe\x00", 400, "JSON", id="not UTF-8"),
        pytest.param([1, 2], 400, "object", id="JSON array instead of object"),
        pytest.param({"path": "/x"}, 400, "eventType", id="missing eventType"),
        pytest.param({"eventType": "", "path": "/x"}, 400, "eventType", id="empty eventType"),
        pytest.param({"eventType": ["page_view"], "path": "/x"}, 400, "eventType", id="non-string eventType"),
        pytest.param({"eventType": "page_view"}, 400, "path", id="missing path"),
        pytest.param({"eventType": "page_view", "path": 42}, 400, "path", id="non-string path"),
        pytest.param({"eventType": "page_view", "path": "x"}, 400, "path", id="relative path"),
        pytest.param({"eventType": "page_view", "path": "javascript:alert(1)"}, 400, "path",
                     id="non-http URL as path"),
        pytest.param({"eventType": "page_view", "path": "/x", "title": 7}, 400, "title",
                     id="non-string title"),
        pytest.param({"eventType": "page_view", "path": "/x", "site": "bad site!"}, 400, "site",
                     id="malformed site"),
        pytest.param({"eventType": "page_view", "path": "/x", "event_id": "not-a-uuid"}, 400, "event_id",
                     id="malformed event_id"),
        pytest.param(b'{"eventType": "page_view", "path": "/x", "pad": "' + b"x" * MAX_BODY_BYTES + b'"}',
                     413, "16384", id="body over 16 KiB"),
    ],
)
def test_bad_input_is_rejected_and_touches_nothing(site, redis_client, mongo_db, cookies_of,
                                                   body, status, error_mentions) -> None:
    response = site.track(body, headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert error_mentions in response.json()["error"]
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN, "the page can read the error"
    assert cookies_of(response) == {}
    assert_untouched(redis_client, mongo_db)


def test_body_of_exactly_16_kib_is_accepted(site, mongo_db, drain) -> None:
    prefix = b'{"eventType": "page_view", "path": "/x", "pad": "'
    body = prefix + b"x" * (MAX_BODY_BYTES - len(prefix) - 2) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    assert site.track(body).status_code == 200
    assert drain() == 1
    assert mongo_db.page_views.count_documents({}) == 1


def test_negative_content_length_is_rejected(site, redis_client, mongo_db) -> None:
    response = site.track(PAGE_VIEW, headers={"Content-Length": "-1"})
    assert response.status_code == 400
    assert "Content-Length" in response.json()["error"]
    assert_untouched(redis_client, mongo_db)


def test_malformed_content_length_is_rejected(site, redis_client, mongo_db) -> None:
    response = site.track(PAGE_VIEW, headers={"Content-Length": "ten"})
    assert response.status_code == 400
    assert_untouched(redis_client, mongo_db)


def test_chunked_body_over_16_kib_is_413(site, redis_client, mongo_db) -> None:
    """No Content-Length (a chunked request the server has de-chunked): at most 16 KiB + 1 is read."""
    body = json.dumps({**PAGE_VIEW, "pad": "x" * MAX_BODY_BYTES}).encode()
    response = site.track(body, chunked=True)
    assert response.status_code == 413
    assert_untouched(redis_client, mongo_db)


def test_chunked_body_within_16_kib_is_recorded(site, mongo_db, drain) -> None:
    response = site.track({**PAGE_VIEW, "event_id": "3b0c2f5e-9d1a-4e7b-8c2d-6a5f4e3d2c10"}, chunked=True)
    assert response.status_code == 200
    assert response.json()["status"] == "recorded"
    assert drain() == 1
    [view] = mongo_db.page_views.find()
    assert view["_id"] == "3b0c2f5e-9d1a-4e7b-8c2d-6a5f4e3d2c10"


@pytest.mark.parametrize("method", [pytest.param("GET", id="GET"), pytest.param("PUT", id="PUT"),
                                    pytest.param("DELETE", id="DELETE")])
def test_other_methods_are_405(site, redis_client, mongo_db, method) -> None:
    response = site.client.request(method, "/analytics/track")
    assert response.status_code == 405
    assert "error" in response.json()
    assert set(response.headers["Allow"].replace(" ", "").split(",")) == {"POST", "OPTIONS"}
    assert response.headers.get_list("set-cookie") == []
    assert_untouched(redis_client, mongo_db)


def test_cors_for_an_allowed_origin(site) -> None:
    response = site.track(PAGE_VIEW, headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]


@pytest.mark.parametrize(
    "origin",
    [pytest.param(OTHER_ORIGIN, id="other origin"), pytest.param("https://shop.example.evil.example",
                                                                   id="allowed origin as a prefix"),
     pytest.param("http://shop.example", id="allowed host over http"), pytest.param(None, id="no Origin")],
)
def test_cors_for_other_origins_gives_no_allow_origin(site, origin) -> None:
    headers = {"Origin": origin} if origin else {}
    response = site.track(PAGE_VIEW, headers=headers)
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_preflight_for_an_allowed_origin(site, redis_client, mongo_db) -> None:
    response = site.client.options("/analytics/track", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert response.content == b""
    assert "Content-Length" not in response.headers, "RFC 9110 8.6: no Content-Length in a 204"
    assert response.headers.get_list("set-cookie") == []
    assert site.seen == []
    assert_untouched(redis_client, mongo_db)


@pytest.mark.parametrize(
    "origin",
    [pytest.param(OTHER_ORIGIN, id="other origin"), pytest.param(None, id="no Origin"),
     pytest.param("null", id="opaque origin")],
)
def test_preflight_for_other_origins_is_403(site, redis_client, mongo_db, origin) -> None:
    headers = {"Origin": origin} if origin else {}
    response = site.client.options("/analytics/track", headers=headers)
    assert response.status_code == 403
    assert "error" in response.json()
    assert "Access-Control-Allow-Origin" not in response.headers
    assert_untouched(redis_client, mongo_db)


def test_no_wildcard_even_for_many_origins(make_site) -> None:
    site = make_site(cors_origins=("https://a.example", "https://b.example"))
    for origin in ("https://a.example", "https://b.example"):
        response = site.track(PAGE_VIEW, headers={"Origin": origin})
        assert response.headers["Access-Control-Allow-Origin"] == origin
    assert site.track(PAGE_VIEW, headers={"Origin": "https://c.example"}).headers.get(
        "Access-Control-Allow-Origin") is None


@pytest.mark.parametrize(
    "user_agent",
    [pytest.param(GOOGLEBOT_UA, id="crawler"), pytest.param(None, id="no User-Agent")],
)
def test_track_from_a_crawler_is_ignored(site, redis_client, mongo_db, user_agent) -> None:
    response = site.track(PAGE_VIEW, client=site.new_client(user_agent))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert response.headers.get_list("set-cookie") == []
    assert_untouched(redis_client, mongo_db)


# Server-side page views --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "recorded", "entries"),
    [
        pytest.param("GET", "/page/about?ref=nav", True, 2, id="HTML GET is a page view"),
        pytest.param("GET", "/api/data", False, 1, id="JSON response is not"),
        pytest.param("GET", "/nowhere", False, 1, id="404 HTML is not"),
        pytest.param("POST", "/page/form", False, 1, id="POST HTML is not"),
        pytest.param("GET", "/static/app.css", False, 0, id="excluded path is not"),
    ],
)
def test_server_pageviews(make_site, mongo_db, clock, queued, drain, method, path, recorded, entries) -> None:
    """A tracked request queues its visit start in its one script call; an HTML page view is known
    only after the app answered and is a second entry."""
    site = make_site(server_pageviews=True)
    response = site.client.request(method, path)
    assert queued() == entries
    assert drain() == entries
    views = list(mongo_db.page_views.find())
    if not recorded:
        assert views == []
        assert mongo_db.sessions.count_documents({}) == entries
        return
    assert response.status_code == 200
    [view] = views
    visit = site.last_visit
    assert (view["path"], view["query"], view["ts"]) == ("/page/about", "ref=nav", clock())
    assert (view["session_id"], view["visitor_id"]) == (visit.session_id, visit.visitor_id)
    [session] = mongo_db.sessions.find()
    assert session["page_views"] == 1
    assert (session["entry_path"], session["exit_path"]) == ("/page/about", "/page/about")


def test_server_pageviews_off_by_default(site, mongo_db, drain) -> None:
    assert site.client.get("/page/about").status_code == 200
    assert drain() == 1
    assert mongo_db.sessions.count_documents({}) == 1
    assert mongo_db.page_views.count_documents({}) == 0


def test_server_pageviews_count_into_one_session(make_site, mongo_db, clock, queued, drain) -> None:
    site = make_site(server_pageviews=True)
    for name in ("a", "b", "c"):
        clock.advance(10)
        site.client.get(f"/page/{name}")
    assert [v.case for v in site.seen] == [Case.NEW_VISITOR, Case.SAME_SESSION, Case.SAME_SESSION]
    assert queued() == 4, "one visit start and three page views"
    assert drain() == 4
    assert [v["path"] for v in mongo_db.page_views.find().sort("ts", 1)] == ["/page/a", "/page/b", "/page/c"]
    [session] = mongo_db.sessions.find()
    assert (session["page_views"], session["entry_path"], session["exit_path"]) == (3, "/page/a", "/page/c")
