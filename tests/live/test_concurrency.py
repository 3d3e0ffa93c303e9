"""The counters stay exact when two processes track the same site at the same time (each request's
counting is part of its one atomic Lua call)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

from footfall.middleware.tracker import RequestFacts, page_view_fields
from footfall.settings import Settings
from footfall.stores import build_tracker
from tests.live.support import BROWSER

VISITORS = 120  # per process
VIEWS = 3  # page views per visitor, in one visit


def cookie_header(set_cookies: list[str]) -> str:
    return "; ".join(value.split(";", 1)[0] for value in set_cookies)


def traffic(settings: Settings, now: datetime, start_at: float, worker: int) -> int:
    """Run in a separate process: ``VISITORS`` new visitors, ``VIEWS`` page views each, starting at
    ``start_at`` (UNIX time) so that both processes overlap. Returns the visits it saw start."""
    tracker = build_tracker(settings)
    started = 0
    time.sleep(max(0.0, start_at - time.time()))
    for visitor in range(VISITORS):
        cookies: str | None = None
        for view in range(VIEWS):
            facts = RequestFacts("POST", f"/w{worker}/v{visitor}/{view}", "", BROWSER, cookies, "")
            page = page_view_fields(site="default", path=facts.path, query="", referrer="", title="", event_id=None)
            visit = tracker.resolve(facts, site="default", now=now, page_view=page)
            if visit is None:
                raise RuntimeError("Redis did not take a page view")
            started += visit.is_new_session
            if visit.is_new_visitor:
                cookies = cookie_header(tracker.cookies.set_cookie_headers(visit))
    tracker.close()
    return started


def test_two_processes_tracking_at_once_are_counted_exactly(settings, clock, make_app, stats_of) -> None:
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 4  # both have imported footfall by then
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        runs = [pool.submit(traffic, settings, clock.now, start_at, worker) for worker in (1, 2)]
        started = [run.result(timeout=120) for run in runs]
    assert started == [VISITORS, VISITORS]
    stats = stats_of(make_app())
    total = 2 * VISITORS
    assert (stats["totalVisits"], stats["uniqueVisitors"], stats["pageViews"]) == (total, total, total * VIEWS)
    assert (stats["todayVisits"], stats["todayUniqueVisitors"], stats["activeUsers"]) == (total, total, total)
