"""Helpers of the live-numbers tests that act as browsers and dashboards on footfall's Flask app."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
AUTH = {"Authorization": "Bearer test-admin-token"}
SEED_BODY = {"visitorId": "visitor_1702757318000_a1b2c3d4e", "timestamp": 1702757318000,
             "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "referrer": "direct"}


def browser(app: Flask, user_agent: str = BROWSER) -> FlaskClient:
    """A new visitor: its own cookie jar, a browser's User-Agent."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = user_agent
    return client


def register(client: FlaskClient, site: str | None = None, **body: Any):
    """``POST /api/visitor/register`` with the seed's body (fields overridden by ``body``)."""
    query = f"?site={site}" if site else ""
    return client.post(f"/api/visitor/register{query}", json={**SEED_BODY, **body})


def track(client: FlaskClient, path: str = "/", **extra: Any):
    """``POST /analytics/track`` of a page view."""
    return client.post("/analytics/track", json={"eventType": "page_view", "path": path, **extra})


def read_stats(app: Flask, site: str | None = None) -> dict[str, Any]:
    """``GET /api/stats`` as the admin; fails the test on any status but 200."""
    query = f"?site={site}" if site else ""
    response = app.test_client().get(f"/api/stats{query}", headers=AUTH)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()
