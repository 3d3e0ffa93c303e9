"""The dashboard page in a real headless Chromium (Debian's, driven by Playwright for Python).

The real app (real Redis and MongoDB-wire server from tests/conftest.py) is served on 127.0.0.1 in a
thread. Visits of the data model's shape (docs/data-model.md) are written to MongoDB; the browser
logs in through the form, and the page's figures, chart and breakdowns are compared with what the
JSON API answers for the same query. Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect
from pymongo.database import Database
from werkzeug.serving import make_server

from footfall.analytics_api import create_app
from footfall.settings import Settings
from footfall.stores.rollup_build import ensure_built
from tests.analytics_api.browser import artifacts_dir, launch_browser, needs_chromium

pytestmark = needs_chromium

TOKEN = "test-admin-token"
SITE = "shop.example"
RANGE = {"start": "2026-01-01", "end": "2026-01-31"}
VIEW = f"/analytics/dashboard?site={SITE}&period=custom&start=2026-01-01&end=2026-01-31"
FIGURES = ["total_visits", "unique_visitors", "page_views", "views_per_visit", "bounce_rate", "visit_duration",
           "new_visits", "returning_visits"]
COUNTS = ["total_visits", "unique_visitors", "page_views", "new_visits", "returning_visits"]

# (visitor, first seen, [(start, paths, events)], country, device, browser, os, referrer host, utm source)
PEOPLE: list[tuple[str, datetime, list[tuple[datetime, list[str], list[str]]], Any, str, str, str, Any, Any]] = [
    ("v1", datetime(2025, 12, 1, tzinfo=UTC), [
        (datetime(2025, 12, 1, 10, tzinfo=UTC), ["/"], []),  # the previous period (December)
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
    ("v6", datetime(2025, 12, 20, 12, tzinfo=UTC), [
        (datetime(2025, 12, 20, 12, tzinfo=UTC), ["/", "/pricing"], []),
    ], "GB", "desktop", "Firefox", "Windows", "google.com", None),
]


def write_visits(db: Database) -> None:
    """Sessions, page views, custom events, visitors and hourly rollups of the data model's shape for
    ``SITE``, plus one visit on another site (the site picker lists both)."""
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
    for site in (SITE, "blog.example"):  # the rollups the drain's builder would have built
        ensure_built(db, site)


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
    yield from launch_browser()


@pytest.fixture
def artifacts() -> Path:
    return artifacts_dir()


def api(base: str, path: str, **params: str) -> Any:
    """The JSON API's answer, asked with the bearer token (not through the browser)."""
    response = requests.get(f"{base}/analytics/api/{path}", params={**RANGE, "site": SITE, "tz": "UTC", **params},
                            headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def open_page(browser: Browser, base: str, problems: list[str], **context: Any) -> Page:
    """A fresh browser context that logs in through the form at ``VIEW``; console errors, page
    errors and failed requests (CSP violations among them) are appended to ``problems``."""
    page = browser.new_context(**{"timezone_id": "UTC", **context}).new_page()
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


def figures_on_page(page: Page) -> dict[str, tuple[str, str, str]]:
    """``{figure: (data-value, visible text, change text)}`` of the top tiles."""
    return page.locator("#tiles .tile").evaluate_all(
        "tiles => Object.fromEntries(tiles.map(t => [t.dataset.metric, [t.dataset.value,"
        " t.querySelector('.tile-value').innerText, t.querySelector('.tile-change').innerText]]))")


def js_round(value: float) -> int:
    """JavaScript's ``Math.round`` (halves up, where Python's ``round`` goes to even)."""
    return math.floor(value + 0.5)


def change_text(change: float | None) -> str:
    """How a tile shows a percent change: an arrow and the whole percent, ``—`` for none."""
    if change is None:
        return "—"
    pct = js_round(change)
    return f"{'↑' if pct > 0 else '↓' if pct < 0 else '→'} {abs(pct)}%"


def assert_figures_match(page: Page, summary: dict[str, Any]) -> None:
    shown = figures_on_page(page)
    assert set(shown) == set(FIGURES)
    for key in FIGURES:
        assert float(shown[key][0]) == pytest.approx(float(summary[key])), key
        # no comparison asked (change is null): the tile keeps an empty line for its change
        assert shown[key][2] == (change_text(summary["change"][key]) if summary["change"] else "\u00a0"), key
    for key in COUNTS:
        assert shown[key][1] == f"{summary[key]:,}", key
    assert shown["bounce_rate"][1] == f"{js_round(summary['bounce_rate'] * 100)}%"


def screenshot(page: Page, path: Path, full_page: bool = True) -> None:
    """Save a screenshot from the top of the page (a full-page capture of a scrolled page would draw
    the sticky header in the middle)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(path), full_page=full_page)


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
    # the data written above, so the comparisons below are not vacuous
    assert (summary["total_visits"], summary["page_views"], summary["new_visits"]) == (8, 13, 5)
    assert summary["previous"]["total_visits"] == 2 and summary["change"]["total_visits"] == 300
    assert_figures_match(page, summary)
    assert page.locator("#site option").all_inner_texts() == sorted(["blog.example", SITE])

    series = api(server, "timeseries", metric="visits", interval="day")
    chart = page.evaluate("() => { const c = Chart.getChart(document.getElementById('chart'));"
                          " return {labels: c.data.labels.length, values: c.data.datasets[0].data,"
                          " lines: c.data.datasets.length}; }")
    buckets = series["points"]
    assert chart["values"] == [b["value"] for b in buckets] and chart["labels"] == len(buckets) == 31
    assert sum(chart["values"]) == 8 and chart["lines"] == 2  # and the previous period's dashed line

    pages = api(server, "breakdown", dimension="page", limit="10", page="1")
    assert rows_of(page, 0) == [r["value"] for r in pages["results"]]
    assert "/pricing" in rows_of(page, 0)
    screenshot(page, artifacts / "dashboard-desktop.png")

    page.locator(".breakdown[data-card='0'] .row-label[data-value='/pricing']").click()
    wait_ready(page)
    expect(page.locator("#filters .chip")).to_have_count(1)
    expect(page.locator("#filters .chip")).to_contain_text("Page is /pricing")
    assert "filters=page%3D%3D%2Fpricing" in page.url
    filtered = api(server, "summary", filters="page==/pricing")
    assert filtered["total_visits"] == 4 and filtered["total_visits"] != summary["total_visits"]
    assert_figures_match(page, filtered)
    screenshot(page, artifacts / "dashboard-desktop-filtered.png")

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
    screenshot(page, artifacts / "dashboard-phone-dark.png")
    screenshot(page, artifacts / "dashboard-phone-dark-top.png", full_page=False)
    page.locator(".breakdown[data-card='2'] .row-label[data-value='DE']").tap()
    wait_ready(page)
    expect(page.locator("#filters .chip")).to_contain_text("Country is Germany (DE)")
    expect(page.locator("#filters .chip")).to_be_in_viewport()  # the sticky header shows it
    assert_figures_match(page, api(server, "summary", filters="country==DE"))
    page.screenshot(path=str(artifacts / "dashboard-phone-dark-filtered.png"))  # where the tap left it
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


def test_presets_and_the_comparison_live_in_the_url(browser: Browser, server: str) -> None:
    problems: list[str] = []
    # a viewer far from UTC still sees the deployment's days (FOOTFALL_TIMEZONE, UTC here)
    page = open_page(browser, server, problems, viewport={"width": 1024, "height": 800},
                     timezone_id="Pacific/Kiritimati")
    page.select_option("#compare", "none")
    wait_ready(page)
    assert "compare=none" in page.url
    assert page.locator("#tiles .tile-change").all_inner_texts() == ["\u00a0"] * len(FIGURES)
    assert page.evaluate("Chart.getChart(document.getElementById('chart')).data.datasets.length") == 1

    with page.expect_request(lambda request: "/analytics/api/summary" in request.url) as summary_request:
        page.click(".presets [data-period='7d']")
    wait_ready(page)
    today = datetime.now(UTC).date()
    week = {"start": (today - timedelta(days=6)).isoformat(), "end": today.isoformat()}
    sent = dict(part.split("=", 1) for part in summary_request.value.url.split("?", 1)[1].split("&"))
    assert sent["tz"] == "UTC"
    if sent["end"] == today.isoformat():  # not across a midnight between the click and now
        assert (sent["start"], sent["end"]) == (week["start"], week["end"])
    assert "period=7d" in page.url and "compare=none" in page.url and "start=" not in page.url
    expect(page.locator(".presets [data-period='7d']")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#custom-range")).to_be_hidden()
    assert_figures_match(page, api(server, "summary", start=sent["start"], end=sent["end"], compare="none"))

    page.go_back()
    wait_ready(page)
    expect(page.locator("#custom-range")).to_be_visible()
    assert page.input_value("#start") == RANGE["start"] and page.input_value("#end") == RANGE["end"]
    page.fill("#start", "2026-01-12")
    page.click("#custom-range button[type=submit]")
    wait_ready(page)
    assert "start=2026-01-12" in page.url
    assert_figures_match(page, api(server, "summary", start="2026-01-12", compare="none"))
    assert problems == []


@pytest.mark.parametrize("value", [
    pytest.param("/a;b|c\\d", id="all three escapes"),
    pytest.param("Direct / None", id="the missing-value label"),
    pytest.param("ünï cödé ✓", id="non-ASCII"),
])
def test_the_page_writes_filters_the_api_reads_back(browser: Browser, server: str, value: str) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 800, "height": 600})
    written = page.evaluate("v => FootfallFilters.withClause('country==DE', 'page', v)", value)
    parsed = page.evaluate("t => FootfallFilters.parse(t).map(c => [c.dimension, c.op, c.values])", written)
    assert parsed == [["country", "==", ["DE"]], ["page", "==", [value]]]
    # the API's own parser agrees: the filter is valid, and names exactly the value
    assert api(server, "summary", filters=written)["total_visits"] == 0
    pricing = page.evaluate("FootfallFilters.withClause('country==DE', 'page', '/pricing')")
    assert api(server, "summary", filters=pricing)["total_visits"] == 3
    assert problems == []


def test_an_expired_login_says_so_and_links_to_the_form(browser: Browser, server: str) -> None:
    problems: list[str] = []
    page = open_page(browser, server, problems, viewport={"width": 1024, "height": 800})
    page.context.clear_cookies()  # as when the cookie expires or the admin token is rotated
    page.click(".presets [data-period='7d']")
    page.wait_for_selector("body[data-state=error]")
    expect(page.locator("#error")).to_contain_text("Log in again")
    page.click("#error a")
    expect(page.locator("input[name=token]")).to_be_visible()
    assert "period=7d" in page.url  # the view is kept for after the login
    assert [p for p in problems if "401" not in p] == []
