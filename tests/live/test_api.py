"""``GET /api/stats`` and ``POST /api/visitor/register`` on footfall's Flask app: who may read,
what a register records and answers, how a bad body is refused, CORS."""

from __future__ import annotations

import json

import pytest

from tests.live.support import AUTH, BROWSER, SEED_BODY, browser, register

GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
STATS_KEYS = {"totalVisits", "todayVisits", "uniqueVisitors", "todayUniqueVisitors", "activeUsers", "pageViews",
              "locations", "lastUpdated"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no token is 401"),
        pytest.param({"Authorization": "Bearer wrong"}, 403, id="wrong token is 403"),
        pytest.param(AUTH, 200, id="admin token is 200"),
    ],
)
def test_stats_need_the_admin_token_unless_public(app, headers: dict[str, str], status: int) -> None:
    response = app.test_client().get("/api/stats", headers=headers)
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == STATS_KEYS if status == 200 else "error" in body
    assert response.headers["Cache-Control"] == "no-store"


def test_public_stats_need_no_token(make_app) -> None:
    app = make_app(public_stats=True)
    response = app.test_client().get("/api/stats")
    assert response.status_code == 200
    assert set(response.get_json()) == STATS_KEYS


def test_stats_reject_a_malformed_site(app) -> None:
    response = app.test_client().get("/api/stats?site=%24where", headers=AUTH)
    assert response.status_code == 400
    assert "site" in response.get_json()["error"]


def test_register_records_a_visit_and_answers_the_stats_when_public(make_app, clock) -> None:
    app = make_app(public_stats=True)
    before = app.test_client().get("/api/stats").get_json()["totalVisits"]
    client = browser(app)
    response = register(client, referrer="https://google.com/search?q=koi+jabo")
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is True
    assert body["stats"]["totalVisits"] == before + 1
    assert body["stats"] == app.test_client().get("/api/stats").get_json()
    assert client.get_cookie("session") and client.get_cookie("visitor_id"), "footfall's own cookies"
    again = register(client)
    assert again.get_json()["stats"]["totalVisits"] == before + 1, "same session: a page view, not a visit"
    assert again.get_json()["stats"]["pageViews"] == 2


def test_register_hides_the_stats_from_a_visitor_unless_public(app, stats_of) -> None:
    response = register(browser(app))
    assert response.status_code == 200
    assert response.get_json() == {"success": True, "stats": None}
    assert stats_of(app)["totalVisits"] == 1
    with_token = browser(app).post("/api/visitor/register", json=SEED_BODY, headers=AUTH)
    assert with_token.get_json()["stats"]["totalVisits"] == 2, "the admin's own register shows them"


def test_register_records_the_referrer_and_the_posting_page(app, drain, mongo_db) -> None:
    client = browser(app)
    client.post("/api/visitor/register", json={**SEED_BODY, "referrer": "https://google.com/"},
                headers={"Referer": "https://koyjabo.example/history?tab=2"})
    register(browser(app))  # "direct", no Referer header
    drain()
    views = sorted((v["path"], v["referrer"]) for v in mongo_db.page_views.find())
    assert views == [("/", ""), ("/history", "https://google.com/")]
    sessions = sorted(s["referrer"] for s in mongo_db.sessions.find())
    assert sessions == ["", "https://google.com/"]


def test_register_takes_identity_from_cookies_not_from_the_body(app, stats_of) -> None:
    register(browser(app), visitorId="same-id-for-everyone")
    register(browser(app), visitorId="same-id-for-everyone")
    assert stats_of(app)["uniqueVisitors"] == 2, "two browsers, two visitors, whatever the body claims"


def test_a_crawler_register_counts_nowhere(make_app) -> None:
    app = make_app(public_stats=True)
    response = register(browser(app, GOOGLEBOT))
    assert response.status_code == 200
    body = response.get_json()
    assert body["success"] is False and "crawler" in body["ignored"]
    assert body["stats"]["totalVisits"] == 0


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        pytest.param(b"{not json", 400, "JSON", id="malformed JSON"),
        pytest.param(b"[1, 2]", 400, "object", id="not an object"),
        pytest.param({"timestamp": 1}, 400, "visitorId", id="no visitorId"),
        pytest.param({"visitorId": "", "timestamp": 1}, 400, "visitorId", id="empty visitorId"),
        pytest.param({"visitorId": 7, "timestamp": 1}, 400, "visitorId", id="visitorId not a string"),
        pytest.param({"visitorId": "v" * 129, "timestamp": 1}, 400, "visitorId", id="visitorId too long"),
        pytest.param({"visitorId": "v"}, 400, "timestamp", id="no timestamp"),
        pytest.param({"visitorId": "v", "timestamp": "now"}, 400, "timestamp", id="timestamp not a number"),
        pytest.param({"visitorId": "v", "timestamp": True}, 400, "timestamp", id="timestamp a boolean"),
        pytest.param({"visitorId": "v", "timestamp": -5}, 400, "timestamp", id="negative timestamp"),
        pytest.param({"visitorId": "v", "timestamp": 1, "referrer": 3}, 400, "referrer", id="referrer not a string"),
        pytest.param({"visitorId": "v", "timestamp": 1, "userAgent": ["x"]}, 400, "userAgent",
                     id="userAgent not a string"),
        pytest.param({"visitorId": "v", "timestamp": 1, "referrer": "r" * 2049}, 400, "referrer",
                     id="referrer too long"),
        pytest.param(b"x" * (16 * 1024 + 1), 413, "bytes", id="over 16 KiB"),
    ],
)
def test_register_refuses_a_bad_body_with_a_json_error(app, stats_of, body, status: int, names: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = browser(app).post("/api/visitor/register", data=raw, content_type="application/json")
    assert response.status_code == status
    assert names in response.get_json()["error"]
    assert stats_of(app)["totalVisits"] == 0


def test_register_refuses_a_malformed_site(app) -> None:
    response = register(browser(app), site="bad$site")
    assert response.status_code == 400
    assert "site" in response.get_json()["error"]


def test_register_and_stats_speak_cors_to_allowed_origins(make_app) -> None:
    app = make_app(public_stats=True)
    origin = {"Origin": "https://shop.example"}
    preflight = app.test_client().options("/api/visitor/register", headers={
        **origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    posted = browser(app).post("/api/visitor/register", json=SEED_BODY, headers=origin)
    assert posted.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    got = app.test_client().get("/api/stats", headers=origin)
    assert got.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    stats_preflight = app.test_client().options("/api/stats",
                                                headers={**origin, "Access-Control-Request-Method": "GET"})
    assert stats_preflight.status_code == 204
    assert "Authorization" in stats_preflight.headers["Access-Control-Allow-Headers"]
    refused = app.test_client().options("/api/visitor/register", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403 and "error" in refused.get_json()
    other = browser(app).post("/api/visitor/register", json=SEED_BODY, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_register_is_not_tracked_twice_by_the_middleware(app, redis_client) -> None:
    register(browser(app))
    assert redis_client.xlen("footfall:events") == 1, "one entry: the register's own page view"


def test_the_wsgi_app_alone_points_live_streams_to_the_asgi_server(app) -> None:
    for path in ("/analytics/live?site=default", "/analytics/ws"):
        response = app.test_client().get(path, headers={**AUTH, "User-Agent": BROWSER})
        assert response.status_code == 501
        assert "footfall serve" in response.get_json()["error"]
