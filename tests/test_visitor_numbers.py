"""Visitor numbers: unique per site forever, kept by returning visitors, recoverable by backfill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from click.testing import CliRunner
from flask import Flask

from footfall.analytics_api import create_app
from footfall.cli import main
from footfall.embedded import free_port, is_listening
from footfall.middleware import FootfallMiddleware
from footfall.settings import Settings
from footfall.stores.visitor_numbers import BLOCKS, backfill, status, visitor_label
from tests.support import wait_until

BROWSER = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Mobile"
AUTH = {"Authorization": "Bearer test-admin-token"}


@pytest.mark.parametrize(
    ("number", "digits", "label"),
    [
        pytest.param(42, 4, "#0042", id="padded to four digits"),
        pytest.param(1, 4, "#0001", id="the first visitor"),
        pytest.param(9999, 4, "#9999", id="the last four-digit number"),
        pytest.param(10000, 4, "#10000", id="grows past 9999 without truncation"),
        pytest.param(123456789, 4, "#123456789", id="far past the padding"),
        pytest.param(7, 6, "#000007", id="FOOTFALL_VISITOR_NUMBER_DIGITS=6"),
        pytest.param(None, 4, None, id="no number, no label"),
    ],
)
def test_visitor_label(number, digits, label) -> None:
    assert visitor_label(number, digits) == label


@pytest.fixture
def make_site(settings: Settings, clock):
    middlewares: list[FootfallMiddleware] = []

    def build(**overrides) -> tuple[Flask, FootfallMiddleware]:
        app = Flask(__name__)

        @app.get("/")
        def index() -> str:
            visit = app_visit()
            return "" if visit is None or visit.visitor_number is None else str(visit.visitor_number)

        middleware = FootfallMiddleware(app.wsgi_app, settings.with_overrides(**overrides), clock=clock)
        app.wsgi_app = middleware  # type: ignore[method-assign]
        middlewares.append(middleware)
        return app, middleware

    yield build
    for middleware in middlewares:
        middleware.close()


def app_visit():
    from flask import request

    return request.environ.get("footfall.visit")


def browser(app: Flask):
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = BROWSER
    return client


def track(client, site: str | None = None):
    body = {"eventType": "page_view", "path": "/"}
    if site:
        body["site"] = site
    return client.post("/analytics/track", json=body).get_json()


def test_new_visitors_get_sequential_numbers_and_labels(make_site) -> None:
    app, _ = make_site()
    answers = [track(browser(app)) for _ in range(3)]
    assert [(a["visitor_number"], a["visitor_label"]) for a in answers] == [(1, "#0001"), (2, "#0002"), (3, "#0003")]


def test_the_app_reads_the_number_from_the_visit(make_site) -> None:
    app, _ = make_site()
    first, second = browser(app), browser(app)
    assert first.get("/").data == b"1"
    assert second.get("/").data == b"2"
    assert first.get("/").data == b"1"


def test_returning_visitors_keep_their_number(make_site, redis_client, clock) -> None:
    app, _ = make_site()
    alice = browser(app)
    assert track(alice)["visitor_number"] == 1
    track(browser(app))
    clock.advance(3600)
    for key in redis_client.scan_iter("footfall:session:*"):  # the session expired
        redis_client.delete(key)
    assert track(alice)["visitor_number"] == 1  # expired session, same visitor
    redis_client.flushall()  # Redis forgets everything; the signed cookie still carries the number
    app2, _ = make_site()  # and the app restarts
    alice.application = app2  # type: ignore[attr-defined]
    again = alice.post("/analytics/track", json={"eventType": "page_view", "path": "/"})
    assert again.get_json()["visitor_number"] == 1


def test_after_flushall_and_a_restart_numbers_continue_above_every_number_handed_out(make_site, redis_client,
                                                                                   mongo_db) -> None:
    app, _ = make_site(visitor_number_block=10)
    before = [track(browser(app))["visitor_number"] for _ in range(12)]
    assert before == list(range(1, 13))
    redis_client.flushall()
    app2, _ = make_site(visitor_number_block=10)
    after = [track(browser(app2))["visitor_number"] for _ in range(3)]
    assert min(after) > max(before), "a number handed out before is never handed out again"
    assert after == [21, 22, 23]  # the rest of the lost block (13-20) is skipped
    assert mongo_db[BLOCKS].find_one({"_id": "default"})["reserved"] >= max(after)


def test_two_sites_count_independently(make_site) -> None:
    app, _ = make_site()
    alice = browser(app)
    assert track(alice, "blog")["visitor_number"] == 1
    assert track(browser(app), "blog")["visitor_number"] == 2
    assert track(alice, "shop")["visitor_number"] == 1  # alice is new to the shop
    assert track(browser(app), "shop")["visitor_number"] == 2
    assert track(alice, "shop")["visitor_number"] == 1


def test_sessions_page_views_and_visitors_carry_the_number(make_site, drain, mongo_db, clock) -> None:
    app, _ = make_site()
    alice, bob = browser(app), browser(app)
    track(alice)
    clock.advance(60)
    track(bob)
    track(alice)
    drain()
    visitors = {v["visitor_number"]: v for v in mongo_db.visitors.find()}
    assert sorted(visitors) == [1, 2]
    assert visitors[1]["first_seen_at"] < visitors[2]["first_seen_at"]
    assert visitors[1]["last_seen_at"] == visitors[2]["last_seen_at"]
    assert set(visitors[1]) == {"_id", "site", "visitor_id", "visitor_number", "first_seen_at", "last_seen_at",
                                "rollup_dirty"}
    for doc in (*mongo_db.sessions.find(), *mongo_db.page_views.find()):
        assert doc["visitor_number"] == (1 if doc["visitor_id"] == visitors[1]["visitor_id"] else 2)


def test_numbering_failure_goes_on_without_a_number_then_backfill(make_site, settings, drain, mongo_db,
                                                                 redis_client, clock) -> None:
    """MongoDB unreachable when a block must be reserved: visits go on unnumbered and counted;
    backfill numbers them later in first-seen order, and a second backfill changes nothing."""
    closed = f"mongodb://127.0.0.1:{free_port()}/footfall"
    app, middleware = make_site(mongodb_uri=closed)
    late, early = browser(app), browser(app)
    clock.advance(10)
    assert track(early) == {"status": "recorded", "visitor_number": None, "visitor_label": None}
    clock.advance(10)
    assert track(late)["visitor_number"] is None
    assert middleware.tracker.numbers_failed.total == 2
    drain()
    assert mongo_db.visitors.count_documents({"visitor_number": None}) == 2

    assert backfill(mongo_db) == {"default": 2}
    first = {v["visitor_id"]: v["visitor_number"] for v in mongo_db.visitors.find()}
    assert sorted(first.values()) == [1, 2]
    earliest = min(mongo_db.visitors.find(), key=lambda v: v["first_seen_at"])
    assert earliest["visitor_number"] == 1, "numbered in first-seen order"
    assert all(s["visitor_number"] == first[s["visitor_id"]] for s in mongo_db.sessions.find())
    assert all(p["visitor_number"] == first[p["visitor_id"]] for p in mongo_db.page_views.find())
    assert backfill(mongo_db) == {"default": 0}
    assert {v["visitor_id"]: v["visitor_number"] for v in mongo_db.visitors.find()} == first
    assert status(mongo_db) == {"default": {"high_water_mark": 2, "highest_assigned": 2, "visitors": 2,
                                            "without_number": 0}}
    assert int(redis_client.hget("footfall:counters", "numbers_failed")) == 2


def test_backfill_endpoint_and_cli(settings, drain, mongo_db, make_site, redis_url, mongodb_uri, monkeypatch) -> None:
    closed = f"mongodb://127.0.0.1:{free_port()}/footfall"
    app, _ = make_site(mongodb_uri=closed)
    for _ in range(3):
        track(browser(app), "blog")
    drain()
    api = create_app(settings)
    try:
        client = api.test_client()
        assert client.post("/analytics/admin/visitor-numbers/backfill", json={"site": "blog"}).status_code == 401
        bad = client.post("/analytics/admin/visitor-numbers/backfill", json={"site": "$x"}, headers=AUTH)
        assert bad.status_code == 400 and "site" in bad.get_json()["error"]
        done = client.post("/analytics/admin/visitor-numbers/backfill", json={"site": "blog"}, headers=AUTH)
        assert done.get_json() == {"assigned": {"blog": 3}}
        again = client.post("/analytics/admin/visitor-numbers/backfill?site=blog", headers=AUTH)
        assert again.get_json() == {"assigned": {"blog": 0}}
        health = client.get("/analytics/health", headers=AUTH).get_json()
        assert health["visitor_numbers"] == {"assigned": 0, "failed": 3, "success_rate": 0.0}
    finally:
        api.extensions["footfall"].close()
    monkeypatch.setenv("FOOTFALL_REDIS_URL", redis_url)
    monkeypatch.setenv("FOOTFALL_MONGODB_URI", mongodb_uri)
    result = CliRunner().invoke(main, ["numbers", "status", "--site", "blog"])
    assert result.exit_code == 0, result.output
    assert "high-water mark 3, highest assigned 3, 3 visitors, 0 without a number" in result.output
    result = CliRunner().invoke(main, ["numbers", "backfill"])
    assert result.exit_code == 0, result.output
    assert "site blog: 0 visitors numbered" in result.output


def test_import_log_numbers_the_visitors_it_creates_in_first_seen_order(mongo_db, tmp_path) -> None:
    from footfall.importer import import_log

    log = tmp_path / "access.log"
    log.write_text(
        '10.0.0.2 - - [17/May/2015:10:00:05 +0000] "GET / HTTP/1.1" 200 10 "-" "Mozilla/5.0 Firefox/38.0"\n'
        '10.0.0.1 - - [17/May/2015:10:00:01 +0000] "GET / HTTP/1.1" 200 10 "-" "Mozilla/5.0 Firefox/38.0"\n'
        '10.0.0.3 - - [17/May/2015:10:00:09 +0000] "GET /a HTTP/1.1" 200 10 "-" "Mozilla/5.0 Firefox/38.0"\n'
    )
    import_log(log, mongo_db, site="s", session_ttl=1800)
    numbers = {v["first_seen_at"].second: v["visitor_number"] for v in mongo_db.visitors.find()}
    assert numbers == {1: 1, 5: 2, 9: 3}
    import_log(log, mongo_db, site="s", session_ttl=1800)  # again: same numbers, none handed out
    assert {v["first_seen_at"].second: v["visitor_number"] for v in mongo_db.visitors.find()} == numbers
    assert status(mongo_db, "s")["s"]["high_water_mark"] == 3
    assert sorted(s["visitor_number"] for s in mongo_db.sessions.find()) == [1, 2, 3]


def test_200_concurrent_new_visitors_through_gunicorn_get_200_distinct_numbers(redis_client, redis_url,
                                                                              mongodb_uri, mongo_db,
                                                                              tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "FOOTFALL_REDIS_URL": redis_url, "FOOTFALL_MONGODB_URI": mongodb_uri,
           "FOOTFALL_SECRET_KEY": "numbers-test", "FOOTFALL_COOKIE_SECURE": "false",
           "FOOTFALL_VISITOR_NUMBER_BLOCK": "7",  # many refills, racing across workers
           "FOOTFALL_DATA_DIR": str(tmp_path)}
    serve = subprocess.Popen([sys.executable, "-m", "footfall", "--log-level", "WARNING", "serve", "--port", str(port),
                              "--workers", "2"], env=env)
    try:
        wait_until(lambda: is_listening(port), 60, "footfall serve")
        url = f"http://127.0.0.1:{port}/analytics/track"

        def one_new_visitor(i: int) -> int:
            response = requests.post(url, json={"eventType": "page_view", "path": f"/{i}"},
                                     headers={"User-Agent": BROWSER}, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()["visitor_number"]

        with ThreadPoolExecutor(max_workers=40) as pool:
            numbers = list(pool.map(one_new_visitor, range(200)))
        assert None not in numbers
        assert len(set(numbers)) == 200, "no number handed out twice"
        assert max(numbers) <= mongo_db[BLOCKS].find_one({"_id": "default"})["reserved"]
        wait_until(lambda: mongo_db.visitors.count_documents({"visitor_number": {"$type": "number"}}) == 200, 30,
                   "the drain to write the numbered visitors")
        assert sorted(mongo_db.visitors.distinct("visitor_number")) == sorted(numbers)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(60)


def test_the_next_block_is_reserved_ahead_so_numbers_run_on_without_gaps(make_site, mongo_db,
                                                                        redis_client) -> None:
    app, middleware = make_site(visitor_number_block=4)
    numbers = []
    for _ in range(10):
        numbers.append(track(browser(app))["visitor_number"])
        wait_until(lambda: not middleware.tracker._prefetching, 5, "the background reservation to finish")
    assert numbers == list(range(1, 11))
    # blocks 1-4, 5-8 and 9-12 were reserved; the last one ahead, while visitor 9 was being numbered
    assert mongo_db[BLOCKS].find_one({"_id": "default"})["reserved"] == 12
    assert redis_client.hget("footfall:vnum:default", "pending_next") is None
