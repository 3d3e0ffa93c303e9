"""The dashboard's login: the form, the signed cookie and what it grants, logout, CSRF checks."""

from __future__ import annotations

import re
import time
from base64 import urlsafe_b64encode
from http.cookies import SimpleCookie

import pytest
from itsdangerous import URLSafeTimedSerializer

from footfall.analytics_api import create_app, dashboard_auth
from footfall.settings import Settings

TOKEN = "test-admin-token"  # tests/conftest.py's settings
LOGIN = "/analytics/dashboard/login"
PAGE = "/analytics/dashboard"


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    yield app
    app.extensions["footfall"].close()


def set_cookie_header(response) -> SimpleCookie:
    headers = response.headers.getlist("Set-Cookie")
    assert len(headers) == 1, headers
    jar: SimpleCookie = SimpleCookie()
    jar.load(headers[0])
    return jar


def log_in(client, token: str = TOKEN, query: str = ""):
    return client.post(LOGIN + (f"?{query}" if query else ""), data={"token": token})


def test_the_page_shows_the_login_form_until_logged_in(app) -> None:
    response = app.test_client().get(PAGE)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="token"' in html and 'type="password"' in html
    assert f'action="{LOGIN}"' in html
    assert "data-api" not in html  # not the dashboard shell
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_login_sets_an_httponly_strict_cookie_and_redirects_without_the_token(app) -> None:
    response = log_in(app.test_client())
    assert response.status_code == 303
    assert response.headers["Location"] == PAGE
    morsel = set_cookie_header(response)[dashboard_auth.COOKIE_NAME]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/analytics"
    assert morsel["max-age"] == str(7 * 24 * 3600)
    assert not morsel["secure"]  # the fixture's settings say cookie_secure=False
    assert TOKEN not in morsel.value
    assert urlsafe_b64encode(TOKEN.encode()).decode().rstrip("=") not in morsel.value


def test_the_cookie_is_secure_when_cookies_are(settings: Settings) -> None:
    app = create_app(settings.with_overrides(cookie_secure=True))
    response = log_in(app.test_client())
    app.extensions["footfall"].close()
    assert set_cookie_header(response)[dashboard_auth.COOKIE_NAME]["secure"] is True


def test_the_view_state_survives_the_login_and_no_url_carries_the_token(app) -> None:
    client = app.test_client()
    form = client.get(f"{PAGE}?site=blog&period=7d&filters=page%3D%3D%2Fpricing&token=leak&other=x")
    action = re.search(r'action="([^"]+)"', form.get_data(as_text=True)).group(1).replace("&amp;", "&")
    assert action == f"{LOGIN}?site=blog&period=7d&filters=page%3D%3D%2Fpricing"
    response = client.post(action, data={"token": TOKEN})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PAGE}?site=blog&period=7d&filters=page%3D%3D%2Fpricing"
    assert TOKEN not in response.headers["Location"]
    page = client.get(response.headers["Location"])
    assert TOKEN not in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("wrong-token", "Wrong admin token.", id="wrong token"),
        pytest.param(TOKEN + "x", "Wrong admin token.", id="token with a suffix"),
        pytest.param("", "Enter the admin token.", id="empty token"),
    ],
)
def test_a_wrong_token_gets_401_and_the_form_again(app, token: str, message: str) -> None:
    response = log_in(app.test_client(), token)
    assert response.status_code == 401
    html = response.get_data(as_text=True)
    assert message in html and 'name="token"' in html
    assert "Set-Cookie" not in response.headers


def test_the_cookie_grants_the_read_api_and_the_page(app) -> None:
    client = app.test_client()
    assert client.get("/analytics/stats").status_code == 401
    assert log_in(client).status_code == 303
    assert client.get("/analytics/stats").status_code == 200
    assert client.get("/analytics/health").status_code == 200
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-api="/analytics/api"' in html
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="/analytics/dashboard/static/' in tag for tag in scripts)  # no inline code
    assert re.search(r"<script\b[^>]*>\s*[^<\s]", html) is None  # empty script bodies


def test_the_cookie_reaches_the_live_stats_under_analytics_only(app) -> None:
    """The cookie's ``Path=/analytics`` keeps it from ``/api/stats`` (RFC 6265 §5.4), so the page's
    live strip reads the same numbers at ``/analytics/live/stats``."""
    client = app.test_client()
    assert log_in(client).status_code == 303
    assert client.get("/api/stats").status_code == 401  # the browser does not send the cookie there
    dashboard = client.get("/analytics/live/stats?site=shop.example")
    assert dashboard.status_code == 200
    bearer = app.test_client().get("/api/stats?site=shop.example", headers={"Authorization": f"Bearer {TOKEN}"})
    # the same counters (lastUpdated, with no change yet, is the time of the read)
    assert {**dashboard.get_json(), "lastUpdated": None} == {**bearer.get_json(), "lastUpdated": None}
    assert app.test_client().get("/analytics/live/stats").status_code == 401  # and not without it
    html = client.get(PAGE).get_data(as_text=True)
    # the Flask app alone (a WSGI server) serves no stream: the page polls instead of opening one
    assert 'data-live-stats="/analytics/live/stats"' in html and 'data-live-stream=""' in html


def test_the_page_opens_the_stream_inside_the_asgi_app(settings: Settings) -> None:
    from starlette.testclient import TestClient

    from footfall.live.app import create_asgi_app

    with TestClient(create_asgi_app(settings), base_url="http://127.0.0.1", follow_redirects=False) as client:
        assert log_in(client).status_code == 303
        page = client.get(PAGE)
        assert 'data-live-stream="/analytics/live"' in page.text
        assert "connect-src 'self'" in page.headers["Content-Security-Policy"]  # EventSource is a connection


def test_a_bearer_header_still_decides_when_sent(app) -> None:
    client = app.test_client()
    log_in(client)
    assert client.get("/analytics/stats", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/analytics/stats", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def _signed(secret: str, salt: str, payload: object) -> str:
    return URLSafeTimedSerializer(secret, salt=salt).dumps(payload)


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: "not-a-signed-value", id="garbage"),
        pytest.param(lambda s: dashboard_auth.issue(s)[:-2] + "xx", id="tampered signature"),
        pytest.param(lambda s: _signed("another-secret", dashboard_auth.SALT, {"v": 1, "fp": "0" * 64}),
                     id="signed with another key"),
        pytest.param(lambda s: _signed(s.secret_key, "another-salt",
                                       URLSafeTimedSerializer(s.secret_key, salt=dashboard_auth.SALT)
                                       .loads(dashboard_auth.issue(s))), id="right payload under another salt"),
        pytest.param(lambda s: _signed(s.secret_key, dashboard_auth.SALT, {"v": 1, "fp": "0" * 64}),
                     id="signed but a made-up fingerprint"),
        pytest.param(lambda s: _signed(s.secret_key, dashboard_auth.SALT, ["v", 1]), id="signed but not an object"),
        pytest.param(lambda s: dashboard_auth.issue(s, now=time.time() - 8 * 24 * 3600), id="older than seven days"),
        pytest.param(lambda s: dashboard_auth.issue(s.with_overrides(admin_token="the-old-token")),
                     id="issued before the token was rotated"),
    ],
)
def test_a_forged_or_stale_cookie_grants_nothing(app, settings: Settings, forge) -> None:
    client = app.test_client()
    client.set_cookie(dashboard_auth.COOKIE_NAME, forge(settings), path="/analytics")
    response = client.get("/analytics/stats")
    assert response.status_code == 401
    assert "log in at /analytics/dashboard" in response.get_json()["error"]
    assert 'name="token"' in client.get(PAGE).get_data(as_text=True)


def test_a_six_day_old_cookie_still_works(app, settings: Settings) -> None:
    client = app.test_client()
    client.set_cookie(dashboard_auth.COOKIE_NAME, dashboard_auth.issue(settings, now=time.time() - 6 * 24 * 3600),
                      path="/analytics")
    assert client.get("/analytics/stats").status_code == 200


def test_a_cookie_signed_with_a_fallback_key_is_accepted(settings: Settings) -> None:
    old = dashboard_auth.issue(settings)
    rotated = settings.with_overrides(secret_key="a-new-secret", secret_key_fallbacks=(settings.secret_key,))
    assert dashboard_auth.is_valid(rotated, old)
    assert not dashboard_auth.is_valid(settings.with_overrides(secret_key="a-new-secret"), old)


def test_no_admin_token_means_no_login(settings: Settings) -> None:
    app = create_app(settings.with_overrides(admin_token=None))
    client = app.test_client()
    response = log_in(client, "anything")
    app.extensions["footfall"].close()
    assert response.status_code == 403
    assert "FOOTFALL_ADMIN_TOKEN is not configured" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert not dashboard_auth.is_valid(settings.with_overrides(admin_token=None), dashboard_auth.issue(settings))


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Origin": "https://evil.example"}, 403, id="another origin"),
        pytest.param({"Origin": "null"}, 403, id="opaque origin"),
        pytest.param({"Referer": "https://evil.example/page"}, 403, id="another referer"),
        pytest.param({"Origin": "http://localhost"}, 303, id="same origin"),
        pytest.param({"Referer": "http://localhost/analytics/dashboard"}, 303, id="same-origin referer"),
        pytest.param({}, 303, id="no browser headers"),
    ],
)
def test_login_checks_the_origin(app, headers: dict[str, str], status: int) -> None:
    response = app.test_client().post(LOGIN, data={"token": TOKEN}, headers=headers)
    assert response.status_code == status
    assert ("Set-Cookie" in response.headers) is (status == 303)


def test_logout_deletes_the_cookie(app) -> None:
    client = app.test_client()
    log_in(client)
    assert client.get("/analytics/stats").status_code == 200
    refused = client.post("/analytics/dashboard/logout", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert client.get("/analytics/stats").status_code == 200
    response = client.post("/analytics/dashboard/logout")
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    morsel = set_cookie_header(response)[dashboard_auth.COOKIE_NAME]
    assert morsel.value == "" and morsel["max-age"] == "0" and morsel["path"] == "/analytics"
    assert client.get("/analytics/stats").status_code == 401


def test_the_static_files_and_the_vendored_chart_library_are_served(app) -> None:
    client = app.test_client()
    scripts = ["dashboard.js", "format.js", "filters.js", "chart.js", "vendor/chart.umd.js"]
    for name, kind in [*((script, "javascript") for script in scripts), ("dashboard.css", "text/css")]:
        response = client.get(f"/analytics/dashboard/static/{name}")
        assert response.status_code == 200, name
        assert kind in response.headers["Content-Type"], name
        response.close()
    licence = client.get("/analytics/dashboard/static/vendor/chart.js-LICENSE.md")
    assert "MIT" in licence.get_data(as_text=True) or "Permission is hereby granted" in licence.get_data(as_text=True)
    licence.close()
