"""GET /analytics/demo and its routes, and the script through the analytics app (no browser; the
browser tests are in test_tracker_browser.py)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from footfall.analytics_api import create_app
from footfall.middleware.script import baked_script
from footfall.settings import Settings

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def client(settings: Settings):
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = BROWSER
    yield client
    app.extensions["footfall"].close()


class Outline(HTMLParser):
    """The parts of the demo page the tests look at: script tags, nav links, sections."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[str | None] = []
        self.sections: dict[str | None, bool] = {}  # data-page -> shown
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and "src" in found:
            self.scripts.append(found)
        elif tag == "a" and "data-route" in found:
            self.links.append(found["href"])
        elif tag == "section":
            self.sections[found["data-page"]] = "hidden" not in found


ROUTES = ["/analytics/demo", "/analytics/demo/pricing", "/analytics/demo/about", "/analytics/demo/docs"]


@pytest.mark.parametrize("path", ROUTES)
def test_each_route_renders_the_page_with_its_section_shown(client, path: str, redis_client) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = Outline(response.get_data(as_text=True))
    assert page.scripts == [{"defer": None, "src": "/analytics/footfall.js", "data-site": "demo"}]
    assert page.links == ROUTES
    assert page.sections == {route: route == path for route in ROUTES}
    assert redis_client.dbsize() == 0, "the page itself is not tracked server-side (the script does that)"


def test_an_unknown_demo_page_is_a_json_404(client) -> None:
    response = client.get("/analytics/demo/nope")
    assert response.status_code == 404
    assert "'nope'" in response.get_json()["error"]


def test_the_app_serves_the_script(client, settings: Settings) -> None:
    response = client.get("/analytics/footfall.js")
    assert response.status_code == 200
    assert response.content_type == "text/javascript; charset=utf-8"
    assert response.get_data() == baked_script(settings).content
