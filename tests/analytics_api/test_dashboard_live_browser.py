"""The dashboard's live strip in a real headless Chromium (Debian's, driven by Playwright for Python).

footfall's real ASGI app (:func:`~footfall.live.app.create_asgi_app`, what ``footfall serve`` runs; real
Redis and MongoDB-wire server from tests/conftest.py) is served by uvicorn on 127.0.0.1 in a thread.
The browser logs in through the form and reads the visits on screen; then ANOTHER visitor, a separate
HTTP client with its own cookies and a desktop browser's User-Agent, posts a page view to
``/analytics/track``, and the number on screen must rise by exactly one within 2 s, pushed by the
Server-Sent Events stream (no reload, no poll). Under the Flask app alone (a plain WSGI server, whose
``/analytics/live`` answers 501) the page opens no stream and polls every 10 s instead (Playwright's
clock runs those 10 s). Screenshots go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Request, expect
from werkzeug.serving import make_server

from footfall.analytics_api import create_app
from footfall.live.app import create_asgi_app
from footfall.settings import Settings
from tests.analytics_api.browser import artifacts_dir, launch_browser, needs_chromium
from tests.live.streams import ThreadedServer

pytestmark = needs_chromium

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SITE, OTHER = "shop.example", "blog.example"
# A visitor's desktop Chrome (HeadlessChrome, the test browser's own, is filtered as a crawler).
DESKTOP_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/131.0.0.0 Safari/537.36")
TICK_DEADLINE = 2.0  # seconds from another visitor's page view to the new number on screen (the issue's)
FIGURES = {"active": "live-active", "total": "live-total", "today": "live-today"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_browser()


@pytest.fixture
def artifacts() -> Path:
    return artifacts_dir()


@pytest.fixture
def asgi_server(settings: Settings) -> Iterator[str]:
    """footfall's ASGI app (streams included) under uvicorn on a free loopback port; its base URL."""
    server = ThreadedServer(create_asgi_app(settings)).start()
    yield server.url
    server.stop()


@pytest.fixture
def wsgi_server(settings: Settings) -> Iterator[str]:
    """footfall's Flask app alone under Werkzeug's threaded WSGI server (no streams); its base URL."""
    app = create_app(settings)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard-live-wsgi", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join(10)
    httpd.server_close()
    app.extensions["footfall"].close()


def another_visitor(base: str, site: str, path: str = "/") -> requests.Session:
    """A new visitor (its own cookie jar, a desktop browser's User-Agent) views ``path`` on ``site``."""
    visitor = requests.Session()
    visitor.headers["User-Agent"] = DESKTOP_CHROME
    response = visitor.post(f"{base}/analytics/track", json={"eventType": "page_view", "path": path, "site": site},
                            timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "recorded", response.text
    return visitor


def api_stats(base: str, site: str) -> dict[str, Any]:
    """``GET /api/stats`` with the bearer token (not through the browser)."""
    response = requests.get(f"{base}/api/stats", params={"site": site}, headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def dashboards(browser: Browser) -> Iterator[Callable[..., Page]]:
    """``dashboards(base, problems, streams, before_load=None, **context)``: :func:`open_dashboard` in
    a fresh browser context, closed at the end of the test (its streams with it) before the server
    stops; list this fixture after the server's."""
    contexts: list[BrowserContext] = []

    def open_one(base: str, problems: list[str], streams: list[str], before_load: Callable[[Page], None] | None = None,
                 **context: Any) -> Page:
        contexts.append(browser.new_context(**{"timezone_id": "UTC", **context}))
        return open_dashboard(contexts[-1].new_page(), base, problems, streams, before_load)

    yield open_one
    for context in contexts:
        context.close()


def open_dashboard(page: Page, base: str, problems: list[str], streams: list[str],
                   before_load: Callable[[Page], None] | None = None) -> Page:
    """Log in through the form at the dashboard of ``SITE`` (today) and wait until it loaded.
    Console errors, page errors and failed requests go to ``problems``; the URLs of the event
    streams the page opens go to ``streams``; ``before_load(page)`` runs before the first request."""
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url} {request.failure}"))

    def opened(request: Request) -> None:
        if urlsplit(request.url).path == "/analytics/live":
            streams.append(request.url)

    page.on("request", opened)
    if before_load is not None:
        before_load(page)
    page.goto(f"{base}/analytics/dashboard?site={SITE}&period=today")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=30_000)
    assert page.get_attribute("body", "data-state") == "ready", page.inner_text("#error")
    return page


def on_screen(page: Page) -> dict[str, int]:
    """The strip's numbers as the page shows them (``4,001`` is 4001)."""
    texts = page.evaluate("ids => ids.map(id => document.getElementById(id).textContent)", list(FIGURES.values()))
    return {name: int(text.replace(",", "")) for name, text in zip(FIGURES, texts, strict=True)}


def expect_numbers(page: Page, stats: dict[str, Any], timeout: float = 10_000) -> None:
    """Wait until the strip shows ``stats``' activeUsers, totalVisits and todayVisits."""
    want = {"live-active": stats["activeUsers"], "live-total": stats["totalVisits"], "live-today": stats["todayVisits"]}
    for element, value in want.items():
        expect(page.locator(f"#{element}")).to_have_text(f"{value:,}", timeout=timeout)


def wait_for_rise(page: Page, before: dict[str, int], deadline: float) -> dict[str, int]:
    """Wait until the total on screen differs from ``before``'s, at the latest at ``deadline``
    (``time.monotonic()``); fails the test when it does not. Returns the numbers then on screen."""
    left_ms = max(0.0, deadline - time.monotonic()) * 1000
    page.wait_for_function("([id, text]) => document.getElementById(id).textContent !== text",
                           arg=[FIGURES["total"], f"{before['total']:,}"], timeout=left_ms)
    return on_screen(page)


def test_the_total_on_screen_ticks_within_two_seconds_of_another_visitors_page_view(
        asgi_server: str, drain: Callable[[], int], artifacts: Path, dashboards: Callable[..., Page]) -> None:
    for path in ("/", "/pricing"):  # two visitors on the site, one on another; stored so the picker lists both
        another_visitor(asgi_server, SITE, path)
    another_visitor(asgi_server, OTHER)
    assert drain() == 3
    problems: list[str] = []
    streams: list[str] = []
    page = dashboards(asgi_server, problems, streams, viewport={"width": 1280, "height": 800})

    strip = page.locator("#live")
    expect(strip).to_be_visible()
    expect(strip).to_have_attribute("data-mode", "stream")  # pushed, not polled
    expect_numbers(page, api_stats(asgi_server, SITE))
    before = on_screen(page)
    assert before == {"active": 2, "total": 2, "today": 2}
    expect(strip).to_contain_text("2 visitors now")
    expect(strip).to_contain_text("2 visits in total · 2 today")
    assert streams == [f"{asgi_server}/analytics/live?site={SITE}"]

    deadline = time.monotonic() + TICK_DEADLINE
    another_visitor(asgi_server, SITE, "/signup")
    after = wait_for_rise(page, before, deadline)
    assert after == {"active": before["active"] + 1, "total": before["total"] + 1, "today": before["today"] + 1}
    stats = api_stats(asgi_server, SITE)
    assert (stats["totalVisits"], stats["activeUsers"]) == (after["total"], after["active"])
    assert page.get_attribute("body", "data-state") == "ready"  # the page was not reloaded
    page.screenshot(path=str(artifacts / "dashboard-live.png"))

    # another site: the strip follows it on a stream of its own, and ticks for that site's visitors
    page.select_option("#site", OTHER)
    expect_numbers(page, api_stats(asgi_server, OTHER))
    expect(strip).to_have_attribute("data-mode", "stream")
    assert streams[-1] == f"{asgi_server}/analytics/live?site={OTHER}" and len(streams) == 2
    before = on_screen(page)
    assert before["total"] == 1
    deadline = time.monotonic() + TICK_DEADLINE
    another_visitor(asgi_server, OTHER)
    assert wait_for_rise(page, before, deadline)["total"] == 2
    # closing the first site's stream on the switch is the page's own doing, not a failure
    closed = f"failed: {asgi_server}/analytics/live?site={SITE} net::ERR_ABORTED"
    assert [p for p in problems if p != closed] == []


def test_the_strip_fits_a_phone_in_dark_mode(asgi_server: str, drain: Callable[[], int], artifacts: Path,
                                             dashboards: Callable[..., Page]) -> None:
    for _ in range(3):
        another_visitor(asgi_server, SITE)
    drain()
    problems: list[str] = []
    page = dashboards(asgi_server, problems, [], viewport={"width": 375, "height": 812},
                          color_scheme="dark", device_scale_factor=2, is_mobile=True, has_touch=True)
    strip = page.locator("#live")
    expect(strip).to_have_attribute("data-mode", "stream")
    expect_numbers(page, api_stats(asgi_server, SITE))
    expect(strip).to_be_in_viewport()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing sticks out sideways
    box, picker = strip.bounding_box(), page.locator("#site").bounding_box()
    assert box is not None and picker is not None and box["y"] >= picker["y"] + picker["height"]  # a row of its own
    assert box["height"] < 40, box  # one line
    dot = page.evaluate("getComputedStyle(document.querySelector('.live-dot')).backgroundColor")
    assert dot == "rgb(74, 222, 128)"  # the dark palette's --live
    page.screenshot(path=str(artifacts / "dashboard-live-phone-dark.png"))
    assert problems == []


def test_under_a_wsgi_server_the_strip_polls_and_opens_no_stream(
        wsgi_server: str, drain: Callable[[], int], dashboards: Callable[..., Page]) -> None:
    another_visitor(wsgi_server, SITE)
    drain()
    problems: list[str] = []
    streams: list[str] = []
    page = dashboards(wsgi_server, problems, streams, before_load=lambda p: p.clock.install(),
                          viewport={"width": 1024, "height": 800})
    strip = page.locator("#live")
    expect(strip).to_have_attribute("data-mode", "poll")
    expect_numbers(page, api_stats(wsgi_server, SITE))
    before = on_screen(page)
    assert before["total"] == 1

    another_visitor(wsgi_server, SITE)
    page.clock.run_for(10_000)  # the poll's 10 s, on the page's clock
    expect(page.locator("#live-total")).to_have_text(f"{before['total'] + 1:,}")
    assert on_screen(page)["active"] == before["active"] + 1
    assert streams == []  # no doomed request to the 501 stream
    assert problems == []

    # the login is gone (expired, or the admin token rotated): the strip hides, nothing broken shows
    page.context.clear_cookies()
    page.clock.run_for(10_000)
    expect(strip).to_be_hidden()
    expect(strip).to_have_attribute("data-mode", "off")
    assert [p for p in problems if not re.search(r"\b401\b", p)] == []
