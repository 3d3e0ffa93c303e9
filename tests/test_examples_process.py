"""The examples under real servers (gunicorn for Flask, uvicorn for Starlette and FastAPI), driven over
HTTP with cookie jars: the same visits, visitors, page views and numbers through every adapter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from footfall.dashboard_queries import summarize
from footfall.embedded import free_port, is_listening
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[1]
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"
SESSION_TTL = 2  # seconds


def server_command(kind: str, target: str, port: int) -> list[str]:
    bin_dir = Path(sys.executable).parent
    if kind == "gunicorn":
        return [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2", target]
    return [str(bin_dir / "uvicorn"), "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", target]


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        pytest.param("gunicorn", "examples.flask_app:app", id="Flask under gunicorn"),
        pytest.param("uvicorn", "examples.starlette_app:app", id="Starlette under uvicorn"),
        pytest.param("uvicorn", "examples.fastapi_app:app", id="FastAPI under uvicorn"),
    ],
)
def test_example_app_tracks_the_three_cases(kind, target, redis_client, redis_url, mongodb_uri, mongo_db,
                                            tmp_path) -> None:
    port = free_port()
    env = {**os.environ, "FOOTFALL_REDIS_URL": redis_url, "FOOTFALL_MONGODB_URI": mongodb_uri,
           "FOOTFALL_SECRET_KEY": "examples-test", "FOOTFALL_COOKIE_SECURE": "false",
           "FOOTFALL_SESSION_TTL": str(SESSION_TTL), "FOOTFALL_SERVER_PAGEVIEWS": "true",
           "FOOTFALL_DATA_DIR": str(tmp_path)}
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen(server_command(kind, target, port), env=env, cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: is_listening(port) or server.poll() is not None, 60, f"{kind} to listen")
        assert server.poll() is None, (tmp_path / "server.log").read_text()
        alice, bob = requests.Session(), requests.Session()
        for jar in (alice, bob):
            jar.headers["User-Agent"] = BROWSER

        first = alice.get(f"{base}/", timeout=10)  # new visitor
        assert (first.status_code, "Hello, visitor 1" in first.text) == (200, True), first.text
        assert {"session", "visitor_id"} <= set(alice.cookies.keys())
        same = alice.get(f"{base}/", timeout=10)  # same session
        assert "visitor_id=" not in same.headers.get("Set-Cookie", "")
        time.sleep(SESSION_TTL + 0.5)
        assert "Hello, visitor 1" in alice.get(f"{base}/", timeout=10).text  # expired session, same visitor
        assert "Hello, visitor 2" in bob.get(f"{base}/", timeout=10).text
        tracked = bob.post(f"{base}/analytics/track", json={"eventType": "page_view", "path": "/spa-route"},
                           timeout=10)
        assert tracked.json() == {"status": "recorded", "visitor_number": 2, "visitor_label": "#0002"}
        assert requests.get(f"{base}/", headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"},
                            timeout=10).status_code == 200

        start = datetime.now(UTC) - timedelta(hours=1)
        end = start + timedelta(hours=2)
        expected = {"total_visits": 3, "unique_visitors": 2, "page_views": 5}
        counts = lambda: {k: v for k, v in summarize(mongo_db, start, end).items() if k in expected}  # noqa: E731
        wait_until(lambda: counts() == expected
                   and mongo_db.visitors.count_documents({"visitor_number": {"$type": "number"}}) == 2,
                   15, f"the in-process drain to write {expected} and both visitors")
        assert sorted(v["visitor_number"] for v in mongo_db.visitors.find()) == [1, 2]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        log.close()
