"""GET /analytics/stats: auth, validation, and the three cases reflected in the counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from footfall.analytics_api import create_app
from footfall.settings import Settings

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
AUTH = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def app(settings: Settings):
    app = create_app(settings)
    yield app
    app.extensions["footfall"].close()


def browser(app) -> FlaskClient:
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = BROWSER
    return client


def track(client: FlaskClient, path: str, **extra: str):
    return client.post("/analytics/track", json={"eventType": "page_view", "path": path, **extra})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no token is 401"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, 401, id="another scheme is 401"),
        pytest.param({"Authorization": "Bearer wrong"}, 403, id="wrong token is 403"),
        pytest.param(AUTH, 200, id="right token is 200"),
    ],
)
def test_stats_needs_the_admin_token(app, headers: dict[str, str], status: int) -> None:
    response = app.test_client().get("/analytics/stats", headers=headers)
    assert response.status_code == status
    if status != 200:
        assert "error" in response.get_json()
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_stats_refuses_every_token_when_none_is_configured(settings: Settings) -> None:
    app = create_app(settings.with_overrides(admin_token=None))
    response = app.test_client().get("/analytics/stats", headers={"Authorization": "Bearer anything"})
    app.extensions["footfall"].close()
    assert response.status_code == 403
    assert "FOOTFALL_ADMIN_TOKEN" in response.get_json()["error"]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("start=2026-13-01", id="impossible month"),
        pytest.param("start=yesterday", id="not a date"),
        pytest.param("start=2026-1-1", id="not zero padded"),
        pytest.param("start=2026-01-10&end=2026-01-09", id="end before start"),
        pytest.param("site=%24where", id="site with a dollar"),
    ],
)
def test_stats_rejects_bad_parameters_with_a_json_400(app, query: str) -> None:
    response = app.test_client().get(f"/analytics/stats?{query}", headers=AUTH)
    assert response.status_code == 400
    assert response.get_json()["error"]


def test_three_cases_are_reflected_in_stats(app, settings: Settings, redis_client, drain) -> None:
    today = datetime.now(UTC).date().isoformat()
    alice, bob = browser(app), browser(app)

    assert track(alice, "/").status_code == 200  # new visitor: visit 1
    assert track(alice, "/pricing").status_code == 200  # same session
    # Redis forgets the session (as when its TTL runs out): the next request is an expired session
    for key in redis_client.scan_iter("footfall:session:*"):
        redis_client.delete(key)
    assert track(alice, "/again").status_code == 200  # expired session: visit 2, same visitor
    assert track(bob, "/").status_code == 200  # another new visitor: visit 3
    assert drain() == 4  # one queued entry per page view (each carrying its visit's start when new)

    response = app.test_client().get(f"/analytics/stats?start={today}&end={today}", headers=AUTH)
    assert response.status_code == 200
    assert response.get_json() == {
        "total_visits": 3, "unique_visitors": 2, "page_views": 4, "start": today, "end": today, "site": None,
    }


def test_stats_filters_by_site(app, drain) -> None:
    client = browser(app)
    track(client, "/", site="blog")
    track(browser(app), "/", site="shop")
    drain()
    body = app.test_client().get("/analytics/stats?site=blog", headers=AUTH).get_json()
    assert (body["site"], body["page_views"]) == ("blog", 1)
    everything = app.test_client().get("/analytics/stats", headers=AUTH).get_json()
    assert everything["page_views"] == 2


def test_health_reports_both_stores(app) -> None:
    response = app.test_client().get("/analytics/health", headers=AUTH)
    assert response.status_code == 200
    body = response.get_json()
    assert body["redis"] is True and body["mongodb"] is True
    assert body["backlog"] == {"length": 0, "lag_seconds": 0.0}
    assert body["events"] == {"written": 0, "failed": 0, "dropped": 0, "dropped_unreported": 0}


def test_health_shows_the_backlog_then_the_written_count(app, drain) -> None:
    track(browser(app), "/a")
    track(browser(app), "/b")
    before = app.test_client().get("/analytics/health", headers=AUTH).get_json()
    assert before["backlog"]["length"] == 2
    assert before["backlog"]["lag_seconds"] >= 0
    drain()
    after = app.test_client().get("/analytics/health", headers=AUTH).get_json()
    assert after["backlog"]["length"] == 0
    assert after["events"]["written"] == 2


def test_unknown_analytics_route_is_a_json_404(app) -> None:
    response = app.test_client().get("/analytics/nothing-here", headers=AUTH)
    assert response.status_code == 404
    assert response.get_json()["error"]
