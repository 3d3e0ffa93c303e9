"""The dashboard page's load time in Chromium (issue 11: "the whole dashboard page, from navigation
until every card has its numbers, ≤ 2 s").

The analytics app (:func:`footfall.analytics_api.create_app`) is served on 127.0.0.1 by Werkzeug's
threaded server in this process, on a loaded MongoDB-wire server and a throwaway Redis
(:func:`footfall.embedded.start_redis`). Debian's Chromium (``/usr/bin/chromium``, driven by
Playwright, as ``tests/analytics_api/browser.py`` does) logs in through the form once, then navigates
``runs`` + 1 times to the 30-day view (the first is a warm-up). A load counts from ``page.goto`` until
``body[data-state=ready]``: ``dashboard.js`` sets it when every request of the load settled and
every tile, the chart and every breakdown card is rendered (``error`` if one failed, which is
raised). Used by :mod:`benchmarks.queries` at its largest size; alone, it needs a loaded server:
``.venv/bin/python -m benchmarks.dashboard_page MONGODB_URL``.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import threading
import time
from datetime import date
from typing import Any

from werkzeug.serving import make_server

from footfall.analytics_api import create_app
from footfall.embedded import start_redis
from footfall.settings import Settings

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "measure_page", "main"]

CHROMIUM = os.environ.get("FOOTFALL_TEST_CHROMIUM", "/usr/bin/chromium")
# as tests/analytics_api/browser.py: no calls to Google's hosts, no sandbox (root)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000


def measure_page(mongodb_url: str, site: str, first: date, last: date, runs: int = 5) -> list[float]:
    """Time ``runs`` loads of the dashboard's ``first``..``last`` view of ``site`` (after a warm-up).

    :param mongodb_url: the loaded MongoDB-wire server (database ``footfall``).
    :return: wall seconds of each load, navigation until ``body[data-state=ready]``.
    :raises RuntimeError: the page ended in ``data-state=error`` (with the page's error text).
    :raises playwright.sync_api.Error: Chromium could not be started or a load took over 120 s.
    """
    from playwright.sync_api import sync_playwright  # the dev install's; only needed here

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    token = secrets.token_urlsafe(16)
    redis_server = start_redis(None)
    app = create_app(Settings(secret_key=secrets.token_urlsafe(32), redis_url=redis_server.url,
                              mongodb_uri=mongodb_url, cookie_secure=False, admin_token=token,
                              inprocess_drain=False))
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, name="dashboard-bench-server", daemon=True)
    thread.start()
    view = (f"http://127.0.0.1:{httpd.server_port}/analytics/dashboard?site={site}&period=custom"
            f"&start={first.isoformat()}&end={last.isoformat()}")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_context(timezone_id="UTC", viewport={"width": 1280, "height": 900}).new_page()
                page.goto(view)
                page.fill("input[name=token]", token)
                page.click("button[type=submit]")
                _wait_ready(page)
                times = []
                for _ in range(runs + 1):
                    started = time.perf_counter()
                    page.goto(view)
                    _wait_ready(page)
                    times.append(time.perf_counter() - started)
                return times[1:]
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()
        app.extensions["footfall"].close()
        redis_server.stop()


def _wait_ready(page: Any) -> None:
    page.wait_for_selector("body[data-state=ready], body[data-state=error]", timeout=TIMEOUT_MS)
    if page.get_attribute("body", "data-state") != "ready":
        raise RuntimeError(f"the dashboard ended in error: {page.inner_text('#error')[:300]}")


def main(argv: list[str] | None = None) -> int:
    """Time the page on an already loaded server; print median and min. 0 when it ran."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard_page", description=__doc__.split("\n\n")[0])
    parser.add_argument("mongodb_url", help="the loaded MongoDB-wire server, e.g. mongodb://127.0.0.1:PORT")
    parser.add_argument("--site", default="semicomplete")
    parser.add_argument("--start", default="2015-06-01", type=date.fromisoformat)
    parser.add_argument("--end", default="2015-06-30", type=date.fromisoformat)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    times = measure_page(args.mongodb_url, args.site, args.start, args.end, args.runs)
    print(f"dashboard page: median {statistics.median(times) * 1000:,.0f} ms, min {min(times) * 1000:,.0f} ms "
          f"over {len(times)} loads")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
