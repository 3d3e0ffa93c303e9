"""The dashboard page in a real headless Chromium (Debian's, driven by Playwright for Python).

The real app (real Redis and MongoDB-wire server from tests/conftest.py) is served on 127.0.0.1 in a
thread. Visits of the data model's shape (docs/data-model.md) are written to MongoDB; the browser
logs in through the form, and the page's figures, chart and breakdowns are compared with what the
JSON API answers for the same query. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pymongo.database import Database
from werkzeug.serving import make_server

from footfall.analytics_api import create_app
from footfall.settings import Settings

CHROMIUM = os.environ.get("FOOTFALL_TEST_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (.ci/run installs Debian's chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKEN = "test-admin-token"
SITE = "shop.example"
RANGE = {"start": "2026-01-01", "end": "2026-01-31"}
VIEW = f"/analytics/dashboard?site={SITE}&period=custom&start=2026-01-01&end=2026-01-31"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
FIGURES = ["total_visits", "unique_visitors", "page_views", "views_per_visit", "bounce_rate", "visit_duration",
           "new_visits", "returning_visits"]
COUNTS = ["total_visits", "unique_visitors", "page_views", "new_visits", "returning_visits"]

# (visitor, first seen, [(start, paths, events)], country, device, browser, os, referrer host, utm source)
PEOPLE: list[tuple[str, datetime, list[tuple[datetime, list[str], list[str]]], Any, str, str, str, Any, Any]] = [
    ("v1", datetime(2025, 12, 1, tzinfo=UTC), [
        (datetime(2026, 1, 10, 9, tzinfo=UTC), ["/", "/pricing"], []),
        (datetime(2026, 1, 12, 15, tzinfo=UTC), ["/pricing", "/signup"], ["Signup"]),
        (datetime(2026, 1, 14, 20, tzinfo=UTC), ["/"], []),
    ], "DE", "desktop", "Chrome", "Windows", "google.com", None),
    ("v2", datetime(2026, 1, 11, 8, tzinfo=UTC), [
        (datetime(2026, 1, 11, 8, tzinfo=UTC), ["/blog/hello", "/"], []),
        (datetime(2026, 1, 13, 7, tzinfo=UTC), ["/"], []),
    ], "US", "mobile", "Mobile Safari", "iOS", "news.ycombinator.com", None),
    ("v3", datetime(2026, 1, 12, 11, tzinfo=UTC), [
        (datetime(2026, 1, 12, 11, tzinfo=UTC), ["/pricing"], []),
    ], "FR", "desktop", "Firefox", "Linux", None, "newsletter"),
    ("v4", datetime(2026, 1, 13, 18, tzinfo=UTC), [
        (datetime(2026, 1, 13, 18, tzinfo=UTC), ["/docs", "/docs/install", "/pricing"], []),
    ], "DE", "tablet", "Chrome", "Android", None, None),
    ("v5", datetime(2026, 1, 14, 6, tzinfo=UTC), [
        (datetime(2026, 1, 14, 6, tzinfo=UTC), ["/"], []),
    ], None, "desktop", "Chrome", "Mac OS X", None, None),
]


def write_visits(db: Database) -> None:
    """Sessions, page views, custom events and visitors of the data model's shape for ``SITE``,
    plus one visit on another site (the site picker lists both)."""
    sessions, views, events, visitors = [], [], [], []
    number = 0
    for visitor, first_seen, visits, country, device, browser, os_name, referrer_host, utm_source in PEOPLE:
        number += 1
        last_seen = first_seen
        for index, (start, paths, names) in enumerate(visits):
            sid = f"{visitor}-s{index}"
            times = [start + timedelta(seconds=40 * i) for i in range(len(paths))]
            event_times = [times[-1] + timedelta(seconds=5 * (i + 1)) for i in range(len(names))]
            last = max([*times, *event_times])
            last_seen = max(last_seen, last)
            for i, (path, ts) in enumerate(zip(paths, times, strict=True)):
                views.append({
                    "_id": f"{sid}-p{i}", "site": SITE, "session_id": sid, "visitor_id": visitor,
                    "visitor_number": number, "ts": ts, "path": path, "query": "", "referrer": "",
                    "title": path, "route": path, "device": device, "browser": browser, "os": os_name,
                    "country": country})
            for i, (name, ts) in enumerate(zip(names, event_times, strict=True)):
                events.append({"_id": f"{sid}-e{i}", "site": SITE, "session_id": sid, "visitor_id": visitor,
                               "visitor_number": number, "ts": ts, "name": name, "props": {},
                               "path": paths[-1], "route": paths[-1]})
            sessions.append({
                "_id": sid, "site": SITE, "visitor_id": visitor, "visitor_number": number, "started_at": start,
                "last_seen_at": last, "page_views": len(paths), "entry_path": paths[0], "exit_path": paths[-1],
                "first_view_at": times[0], "last_view_at": times[-1],
                "event_ids": [v["_id"] for v in views if v["session_id"] == sid],
                "referrer": f"https://{referrer_host}/" if referrer_host else "", "user_agent": "test",
                "referrer_host": referrer_host, "utm_source": utm_source,
                "utm_medium": "email" if utm_source else None, "utm_campaign": "january" if utm_source else None,
                "device": device, "browser": browser, "os": os_name, "country": country, "city": None,
                "paths": sorted(set(paths)), "routes": sorted(set(paths)), "events": len(names),
                "event_names": sorted(set(names))})
        visitors.append({"_id": f"{SITE}|{visitor}", "site": SITE, "visitor_id": visitor, "visitor_number": number,
                         "first_seen_at": first_seen, "last_seen_at": last_seen})
    other = datetime(2026, 1, 12, 10, tzinfo=UTC)
    sessions.append({**sessions[-1], "_id": "blog-s0", "site": "blog.example", "visitor_id": "b1",
                     "started_at": other, "last_seen_at": other, "first_view_at": other, "last_view_at": other})
    visitors.append({"_id": "blog.example|b1", "site": "blog.example", "visitor_id": "b1", "visitor_number": 1,
                     "first_seen_at": other, "last_seen_at": other})
    db.sessions.insert_many(sessions)
    db.page_views.insert_many(views)
    db.custom_events.insert_many(events)
    db.visitors.insert_many(visitors)


@pytest.fixture
def server(settings: Settings, mongo_db: Database) -> Iterator[str]:
    """The real app on 127.0.0.1 (a free port), serving until the test ends; yields its base URL."""
    app = create_app(settings)
    write_visits(mongo_db)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard-test-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)
    httpd.server_close()
    app.extensions["footfall"].close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def api(base: str, path: str, **params: str) -> Any:
    """The JSON API's answer, asked with the bearer token (not through the browser)."""
    response = requests.get(f"{base}/analytics/api/{path}", params={**RANGE, "site": SITE, "tz": "UTC", **params},
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def open_page(browser: Browser, base: str, problems: list[str], **context: Any) -> Page:
    """A fresh browser context that logs in through the form at ``VIEW``; console errors, page
    errors and failed requests (CSP violations among them) are appended to ``problems``."""
    page = browser.new_context(timezone_id="UTC", **context).new_page()
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.goto(base + VIEW)
    expect(page.locator("input[name=token]")).to_be_visible()
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    wait_ready(page)
    return page


def wait_ready(page: Page) -> None:
    """Wait until every request of the page's current load settled without an error."""
    page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=30_000)
    state = page.get_attribute("body", "data-state")
    assert state == "ready", page.inner_text("#error")


def figures_on_page(page: Page) -> dict[str, tuple[str, str]]:
    """``{figure: (data-value, visible text)}`` of the top tiles."""
    tiles = page.locator("#tiles .tile")
    return {tiles.nth(i).get_attribute("data-metric"): (tiles.nth(i).get_attribute("data-value"),
                                                        tiles.nth(i).locator(".tile-value").inner_text())
            for i in range(tiles.count())}


def assert_figures_match(page: Page, summary: dict[str, Any]) -> None:
    shown = figures_on_page(page)
    assert set(shown) == set(FIGURES)
    for key in FIGURES:
        assert float(shown[key][0]) == pytest.approx(float(summary[key])), key
    for key in COUNTS:
        assert shown[key][1] == f"{summary[key]:,}", key
    assert shown["bounce_rate"][1] == f"{round(summary['bounce_rate'] * 100)}%"


def rows_of(page: Page, card: int) -> list[str]:
    return page.locator(f".breakdown[data-card='{card}'] .row-label").evaluate_all(
        "nodes => nodes.map(n => n.dataset.value)")


def test_log_in_see_the_figures_and_filter_by_a_breakdown_value(browser: Browser, server: str,
                                                               artifacts: Path) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 1280, "height": 900})
    assert "token" not in page.url and TOKEN not in page.url
    cookie = next(c for c in page.context.cookies() if c["name"] == "footfall_dashboard")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/analytics"
    assert TOKEN not in cookie["value"]

    summary = api(server, "summary")
    assert summary["total_visits"] == 8  # the data written above, so the comparison below is not vacuous
    assert_figures_match(page, summary)
    assert page.locator("#site option").all_inner_texts() == sorted(["blog.example", SITE])

    series = api(server, "timeseries", metric="visits", interval="day")
    chart = page.evaluate("() => { const c = Chart.getChart(document.getElementById('chart'));"
                          " return {labels: c.data.labels.length, values: c.data.datasets[0].data}; }")
    buckets = series.get("results") or series.get("buckets")
    assert chart["values"] == [b["value"] for b in buckets] and chart["labels"] == len(buckets) == 31

    pages = api(server, "breakdown", dimension="page", limit="10", page="1")
    assert rows_of(page, 0) == [r["value"] for r in pages["results"]]
    assert "/pricing" in rows_of(page, 0)
    page.screenshot(path=str(artifacts / "dashboard-desktop.png"), full_page=True)

    page.locator(".breakdown[data-card='0'] .row-label[data-value='/pricing']").click()
    wait_ready(page)
    expect(page.locator("#filters .chip")).to_have_count(1)
    expect(page.locator("#filters .chip")).to_contain_text("Page is /pricing")
    assert "filters=page%3D%3D%2Fpricing" in page.url
    filtered = api(server, "summary", filters="page==/pricing")
    assert filtered["total_visits"] == 4 and filtered["total_visits"] != summary["total_visits"]
    assert_figures_match(page, filtered)
    page.screenshot(path=str(artifacts / "dashboard-desktop-filtered.png"), full_page=True)

    page.locator(".breakdown[data-card='3'] [role=tab][data-dimension='browser']").click()
    page.wait_for_selector(".breakdown[data-card='3']:not(.loading) .row-label[data-value='Chrome']")
    browsers = api(server, "breakdown", dimension="browser", filters="page==/pricing", limit="10", page="1")
    assert rows_of(page, 3) == [r["value"] for r in browsers["results"]]

    page.locator("#filters .chip-remove").click()
    wait_ready(page)
    expect(page.locator("#filters .chip")).to_have_count(0)
    assert_figures_match(page, summary)
    page.go_back()  # the filtered view is in the history (state lives in the query string)
    wait_ready(page)
    assert_figures_match(page, filtered)
    assert problems == []


def test_phone_width_in_dark_mode(browser: Browser, server: str, artifacts: Path) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 375, "height": 812}, color_scheme="dark",
                     device_scale_factor=2, is_mobile=True, has_touch=True)
    assert_figures_match(page, api(server, "summary"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing sticks out sideways
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(c) for c in background[background.index("(") + 1:-1].split(",")[:3]) < 120, background
    line = page.evaluate("Chart.getChart(document.getElementById('chart')).data.datasets[0].borderColor")
    assert line == page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--chart-line').trim()")
    page.screenshot(path=str(artifacts / "dashboard-phone-dark.png"), full_page=True)
    page.locator(".breakdown[data-card='2'] .row-label[data-value='DE']").tap()
    wait_ready(page)
    expect(page.locator("#filters .chip")).to_contain_text("Country is Germany (DE)")
    expect(page.locator("#filters .chip")).to_be_in_viewport()  # the sticky header shows it
    assert_figures_match(page, api(server, "summary", filters="country==DE"))
    page.screenshot(path=str(artifacts / "dashboard-phone-dark-filtered.png"))
    assert problems == []


def test_an_api_error_is_shown_not_a_blank_page(browser: Browser, server: str) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 1024, "height": 800})
    page.goto(server + VIEW + "&filters=nonsense%3D%3Dx")
    page.wait_for_selector("body[data-state=error]")
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("nonsense")
    expect(page.locator("#filters .chip")).to_have_count(1)  # the bad filter can be removed
    page.locator("#filters .chip-remove").click()
    wait_ready(page)
    expect(page.locator("#error")).to_be_hidden()
    # The 400s are the expected console errors here; nothing else went wrong.
    assert [p for p in problems if "400" not in p] == []


def test_logging_out_returns_to_the_form(browser: Browser, server: str) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 1024, "height": 800})
    page.click(".logout button")
    expect(page.locator("input[name=token]")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "footfall_dashboard"]
    assert problems == []
