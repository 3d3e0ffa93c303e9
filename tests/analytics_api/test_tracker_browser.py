"""footfall.js in a real browser: Debian's headless Chromium, driven by Playwright, on the demo page
served by the real app (Werkzeug's server on 127.0.0.1, real Redis and MongoDB-wire servers).

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``.ci/run`` installs
Debian's ``chromium``); without it these tests are skipped, saying so. Every wait is for an event
(a response, a request), never for a span of time. Headless Chromium's User-Agent says
``HeadlessChrome``, which footfall's crawler filter rightly ignores, so each context presents the
desktop Chrome User-Agent of the same version, as a person's browser does.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page
from pymongo.database import Database
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from footfall.analytics_api import create_app
from footfall.analytics_api.demo import DEMO_SITE
from footfall.middleware.script import baked_script
from footfall.settings import Settings
from tests.analytics_api.browser import launch_browser, needs_chromium
from tests.support import wait_until

pytestmark = needs_chromium

TRACK_PATH = "/analytics/track"
DEMO = "/analytics/demo"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# Fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module (each test opens its own profile)."""
    yield from launch_browser()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """``new_page(**context_options)``: a page in a fresh profile (no cookies) with a desktop Chrome
    User-Agent; options as Playwright's ``Browser.new_context``."""
    contexts: list[BrowserContext] = []
    user_agent = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{browser.version.split('.')[0]}.0.0.0 Safari/537.36")

    def open_page(**options: Any) -> Page:
        context = browser.new_context(user_agent=user_agent, **options)
        context.set_default_timeout(10_000)  # ms: a wait that fails, fails sooner than Playwright's 30 s
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """``serve(wsgi_app)``: serve an app on a free port of 127.0.0.1 (Werkzeug's threaded server in
    a thread) and return its origin. Stopped after the test."""
    servers: list[tuple[Any, threading.Thread]] = []

    def start(app: Any) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server, thread in servers:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def footfall_app(settings: Settings) -> Iterator[Callable[..., Any]]:
    """``footfall_app(**overrides)``: footfall's Flask app on the test's stores (settings fixture
    with ``overrides``); closed after the test. The test drains with the ``drain`` fixture."""
    apps: list[Any] = []

    def build(**overrides: Any) -> Any:
        app = create_app(settings.with_overrides(**overrides))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.extensions["footfall"].close()


class PageWatch:
    """What a page did: console messages, uncaught exceptions, and the events it posted to the track
    endpoint (decoded JSON bodies, in the order the browser sent them)."""

    def __init__(self, page: Page) -> None:
        self.console: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self.sent: list[dict[str, Any]] = []
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if request.method == "POST" and request.url.split("?")[0].endswith(TRACK_PATH):
            self.sent.append(json.loads(request.post_data or "null"))

    @property
    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions: empty when the page raised nothing."""
        return [text for kind, text in self.console if kind == "error"] + self.page_errors

    def paths(self, event_type: str = "page_view") -> list[str]:
        """The ``path`` of each posted event of ``event_type``, in order."""
        return [event["path"] for event in self.sent if event.get("eventType") == event_type]


def is_track_post(response: Any) -> bool:
    """For ``page.expect_response``: the answer to an event posted to the track endpoint."""
    return response.request.method == "POST" and response.url.split("?")[0].endswith(TRACK_PATH)


def sent_view(page: Page, action: Callable[[], Any]) -> int:
    """Do ``action`` and wait until the page view it causes is answered; return the status."""
    with page.expect_response(is_track_post) as answer:
        action()
    return answer.value.status


def views_in_order(mongo_db: Database) -> list[dict[str, Any]]:
    return list(mongo_db.page_views.find().sort("ts", 1))


# The scenario ------------------------------------------------------------------------------


def test_three_client_side_routes_are_three_page_views_of_one_visit(
    footfall_app, serve, new_page, drain, mongo_db
) -> None:
    """Issue: "open the demo page, click through three client-side routes, and assert 3 page views
    and 1 visit were recorded with the right paths; the script raises nothing in the console".

    The three routes are Home, where the demo opens (the script's page view on load), then Pricing
    and About, reached by clicking the demo's links (``history.pushState``, no reload)."""
    origin = serve(footfall_app())
    page = new_page()
    watch = PageWatch(page)

    assert sent_view(page, lambda: page.goto(origin + DEMO)) == 200
    assert sent_view(page, lambda: page.click("nav >> text=Pricing")) == 200
    assert page.locator("h1:visible").inner_text() == "Pricing", "the demo changed route"
    assert sent_view(page, lambda: page.click("nav >> text=About")) == 200
    assert page.url == origin + DEMO + "/about"

    assert drain() == 3
    views = views_in_order(mongo_db)
    assert [v["path"] for v in views] == [DEMO, DEMO + "/pricing", DEMO + "/about"]
    assert [v["title"] for v in views] == ["Home · footfall demo", "Pricing · footfall demo", "About · footfall demo"]
    assert {v["site"] for v in views} == {DEMO_SITE}
    assert all(UUID4.match(v["_id"]) for v in views), "each view carries the script's UUID"
    [visit] = mongo_db.sessions.find()
    assert (visit["page_views"], visit["entry_path"], visit["exit_path"]) == (3, DEMO, DEMO + "/about")
    assert {v["session_id"] for v in views} == {visit["_id"]}
    assert mongo_db.visitors.count_documents({}) == 1
    assert watch.errors == []


def test_history_navigation_sends_one_view_per_path_change(footfall_app, serve, new_page, drain, mongo_db) -> None:
    """Back and forward (``popstate``) are page views; ``replaceState`` to the same path, a hash
    change and clicking the link of the route already shown are not; ``replaceState`` to a new query
    is. The last click (Docs) is answered after everything before it was sent: the browser sends in
    order, so the list of sent views is complete when it is checked."""
    origin = serve(footfall_app())
    page = new_page()
    watch = PageWatch(page)
    sent_view(page, lambda: page.goto(origin + DEMO))
    sent_view(page, lambda: page.click("nav >> text=Pricing"))
    assert sent_view(page, page.go_back) == 200
    assert page.locator("h1:visible").inner_text() == "Home"
    sent_view(page, page.go_forward)
    page.evaluate("history.replaceState(null, '', location.href)")
    page.evaluate("location.hash = 'faq'")
    page.click("nav >> text=Pricing")
    sent_view(page, lambda: page.evaluate("history.replaceState(null, '', '?plan=pro')"))
    sent_view(page, lambda: page.click("nav >> text=Docs"))

    expected = [DEMO, DEMO + "/pricing", DEMO, DEMO + "/pricing", DEMO + "/pricing?plan=pro", DEMO + "/docs"]
    assert watch.paths() == expected
    assert drain() == len(expected)
    views = views_in_order(mongo_db)
    assert [(v["path"], v["query"]) for v in views][-2:] == [(DEMO + "/pricing", "plan=pro"), (DEMO + "/docs", "")]
    assert mongo_db.sessions.count_documents({}) == 1
    assert watch.errors == []


# Custom events -------------------------------------------------------------------------------------


def test_custom_events_are_posted_as_the_track_endpoint_reads_them(footfall_app, serve, new_page) -> None:
    """The signup button's ``footfall.track("signup", {plan: "pro"})``, and a call queued in
    ``footfall.q`` before the script ran, are posted after the load's page view with a name, the
    props, the page and a UUID. (What the server makes of them: the next test.)"""
    origin = serve(footfall_app())
    page = new_page()
    page.add_init_script("window.footfall = {q: [['early', {n: 1}]], track: function () {}};")
    watch = PageWatch(page)
    with page.expect_response(lambda r: is_track_post(r) and "early" in (r.request.post_data or "")):
        page.goto(origin + DEMO)
    sent_view(page, lambda: page.click("nav >> text=Pricing"))
    with page.expect_response(lambda r: is_track_post(r) and "signup" in (r.request.post_data or "")):
        page.click("#signup")

    assert [event["eventType"] for event in watch.sent] == ["page_view", "custom", "page_view", "custom"]
    early, signup = (event for event in watch.sent if event["eventType"] == "custom")
    assert (early["name"], early["props"], early["path"]) == ("early", {"n": 1}, DEMO)
    assert (signup["name"], signup["props"], signup["path"]) == ("signup", {"plan": "pro"}, DEMO + "/pricing")
    assert signup["site"] == DEMO_SITE and UUID4.match(signup["event_id"])
    assert page.locator("#signup-status").inner_text() == "sent: signup, plan = pro"
    assert watch.page_errors == []


def test_signup_button_records_a_custom_event_in_the_visit(footfall_app, serve, new_page, drain, mongo_db) -> None:
    origin = serve(footfall_app())
    page = new_page()
    watch = PageWatch(page)
    sent_view(page, lambda: page.goto(origin + DEMO + "/pricing"))
    with page.expect_response(lambda r: is_track_post(r) and "signup" in (r.request.post_data or "")) as answer:
        page.click("#signup")
    assert answer.value.status == 200, answer.value.text()

    assert drain() == 2
    [event] = mongo_db.custom_events.find()
    assert (event["name"], event["props"], event["path"], event["site"]) == (
        "signup", {"plan": "pro"}, DEMO + "/pricing", DEMO_SITE)
    [visit] = mongo_db.sessions.find()
    assert (event["session_id"], visit["page_views"], visit["events"], visit["event_names"]) == (
        visit["_id"], 1, 1, ["signup"])
    assert watch.errors == []


# Global Privacy Control ----------------------------------------------------------------------------

GPC_BROWSER = {"extra_http_headers": {"Sec-GPC": "1"}}
GPC_SCRIPT = "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true});"


def test_gpc_respected_sends_and_records_nothing(footfall_app, serve, new_page, redis_client, drain, mongo_db) -> None:
    """With ``FOOTFALL_RESPECT_GPC=true`` a browser that signals GPC (``navigator.globalPrivacyControl``
    and ``Sec-GPC: 1``) gets a script that sends nothing; ``footfall.track`` is a no-op. The test's
    own post at the end proves the list of posts complete (the browser sends in order), and that the
    server too records nothing from such a request (204)."""
    origin = serve(footfall_app(respect_gpc=True))
    page = new_page(**GPC_BROWSER)
    page.add_init_script(GPC_SCRIPT)
    watch = PageWatch(page)
    page.goto(origin + DEMO)
    page.click("nav >> text=Pricing")
    page.click("#signup")
    page.click("nav >> text=About")
    page.evaluate("new Promise(resolve => setTimeout(resolve, 0))")  # the script's deferred views have run
    status = page.evaluate(
        f"fetch('{TRACK_PATH}', {{method: 'POST', body: JSON.stringify({{eventType: 'page_view', path: '/x'}})}})"
        ".then(response => response.status)"
    )

    assert status == 204
    assert watch.paths() == ["/x"], "the script posted nothing; only the test's own post went out"
    assert page.evaluate("typeof window.footfall.track") == "function"
    assert redis_client.xlen("footfall:events") == 0
    assert drain() == 0
    assert mongo_db.sessions.count_documents({}) == mongo_db.page_views.count_documents({}) == 0
    assert page.context.cookies() == [], "no visitor or session cookie either"
    assert watch.errors == []


def test_gpc_signal_is_tracked_when_the_setting_is_off(footfall_app, serve, new_page, drain, mongo_db) -> None:
    """The control of the test above: the same browser, ``FOOTFALL_RESPECT_GPC`` off (the default)."""
    origin = serve(footfall_app())
    page = new_page(**GPC_BROWSER)
    page.add_init_script(GPC_SCRIPT)
    watch = PageWatch(page)
    sent_view(page, lambda: page.goto(origin + DEMO))
    assert page.evaluate("navigator.globalPrivacyControl") is True
    sent_view(page, lambda: page.click("nav >> text=Pricing"))
    assert drain() == 2
    assert [v["path"] for v in views_in_order(mongo_db)] == [DEMO, DEMO + "/pricing"]
    assert watch.errors == []


# Fallbacks and another origin ----------------------------------------------------------------------


def test_without_fetch_and_random_uuid_the_beacon_carries_a_uuid4(
    footfall_app, serve, new_page, drain, mongo_db, redis_client
) -> None:
    """A browser without ``fetch`` and ``crypto.randomUUID`` (an old one, or a page served over
    plain http from a LAN address: ``randomUUID`` needs a secure context) still sends its views,
    through ``navigator.sendBeacon``, with version 4 UUIDs from ``crypto.getRandomValues``."""
    origin = serve(footfall_app())
    page = new_page()
    page.add_init_script("delete window.fetch;"
                         "Object.defineProperty(Crypto.prototype, 'randomUUID', {value: undefined});")
    watch = PageWatch(page)
    sent_view(page, lambda: page.goto(origin + DEMO))
    sent_view(page, lambda: page.click("nav >> text=Docs"))
    assert page.evaluate("typeof fetch + ' ' + typeof crypto.randomUUID") == "undefined undefined"

    # a beacon's answer can reach the browser's network log before the next one is handled: wait
    # for both entries on the stream (on a loaded machine the second one came later)
    wait_until(lambda: redis_client.xlen("footfall:events") >= 2, 10, "both beacons on the stream")
    assert drain() == 2
    views = views_in_order(mongo_db)
    assert [v["path"] for v in views] == [DEMO, DEMO + "/docs"]
    assert all(UUID4.match(v["_id"]) for v in views)
    assert [event["event_id"] for event in watch.sent] == [v["_id"] for v in views]
    assert mongo_db.sessions.count_documents({}) == 1, "the beacon carried the cookies"
    assert watch.errors == []


def test_data_api_posts_to_footfall_on_another_origin(footfall_app, serve, new_page, settings, drain, mongo_db) -> None:
    """A shop on one origin serves its own copy of footfall.js with ``data-api`` naming footfall's
    origin (another port of 127.0.0.1: another origin, the same site, so the ``SameSite=Lax``
    cookies go along). footfall lists the shop in ``FOOTFALL_CORS_ORIGINS``."""
    script = baked_script(settings).content
    shop: dict[str, str] = {}

    @Request.application
    def shop_app(request: Request) -> Response:
        if request.path == "/js/footfall.js":
            return Response(script, mimetype="text/javascript")
        return Response(
            "<!doctype html><title>Shop</title><link rel=icon href='data:,'>"
            f"<script defer src='/js/footfall.js' data-api='{shop['footfall']}' data-site='shop'></script>"
            "<button onclick=\"history.pushState(null, '', '/cart'); document.title = 'Cart'\">cart</button>",
            mimetype="text/html",
        )

    shop_origin = serve(shop_app)
    shop["footfall"] = serve(footfall_app(cors_origins=(shop_origin,)))
    page = new_page()
    watch = PageWatch(page)
    assert sent_view(page, lambda: page.goto(shop_origin + "/products?utm_source=mail")) == 200
    assert sent_view(page, lambda: page.click("button")) == 200

    assert drain() == 2
    views = views_in_order(mongo_db)
    assert [(v["site"], v["path"], v["query"], v["title"]) for v in views] == [
        ("shop", "/products", "utm_source=mail", "Shop"), ("shop", "/cart", "", "Cart")]
    assert mongo_db.sessions.count_documents({}) == 1, "the second post carried the first one's cookies"
    assert [event.get("site") for event in watch.sent] == ["shop", "shop"]
    assert watch.errors == [], "no CORS refusal either"
