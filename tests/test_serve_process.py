"""`footfall serve` as a real process on the embedded default, driven over HTTP with cookie jars."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from footfall.embedded import free_port, is_listening
from tests.conftest import with_database
from tests.support import wait_until

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
SESSION_TTL = 2  # seconds, so the expired-session case needs only a short wait


def footfall_command() -> list[str]:
    return [sys.executable, "-m", "footfall"]


def process_env(data_dir: Path) -> dict[str, str]:
    """The environment of the server: embedded stores unless the suite runs on external servers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(FOOTFALL_DATA_DIR=str(data_dir), FOOTFALL_COOKIE_SECURE="false",
               FOOTFALL_SESSION_TTL=str(SESSION_TTL))
    if os.environ.get("FOOTFALL_TEST_REDIS_URL"):
        env["FOOTFALL_REDIS_URL"] = os.environ["FOOTFALL_TEST_REDIS_URL"]
    if os.environ.get("FOOTFALL_TEST_MONGODB_URI"):
        env["FOOTFALL_MONGODB_URI"] = with_database(os.environ["FOOTFALL_TEST_MONGODB_URI"],
                                                    f"footfall_test_{uuid.uuid4().hex[:12]}")
    if "FOOTFALL_REDIS_URL" in env and "FOOTFALL_MONGODB_URI" in env:
        env.update(FOOTFALL_SECRET_KEY="process-test-secret", FOOTFALL_ADMIN_TOKEN="process-test-token")
    return env


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict]:
    port = free_port()
    env = process_env(tmp_path)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([*footfall_command(), "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: is_listening(port) or proc.poll() is not None, 90, "footfall serve to listen")
        assert proc.poll() is None, (tmp_path / "serve.log").read_text()
        token = env.get("FOOTFALL_ADMIN_TOKEN") or (tmp_path / "admin_token").read_text().strip()
        yield {"url": f"http://127.0.0.1:{port}", "token": token, "proc": proc, "data_dir": tmp_path, "env": env}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        log.close()


def track(jar: requests.Session, base: str, path: str) -> requests.Response:
    return jar.post(f"{base}/analytics/track", json={"eventType": "page_view", "path": path},
                    headers={"User-Agent": BROWSER}, timeout=10)


def test_serve_over_http_shows_all_three_cases_in_stats(server: dict) -> None:
    base = server["url"]
    auth = {"Authorization": f"Bearer {server['token']}"}
    alice, bob = requests.Session(), requests.Session()

    first = track(alice, base, "/")
    assert first.status_code == 200, first.text
    assert {"session", "visitor_id"} <= set(alice.cookies.keys())  # new visitor: both cookies
    visitor = alice.cookies["visitor_id"]

    same = track(alice, base, "/pricing")
    assert same.status_code == 200
    assert "visitor_id=" not in same.headers.get("Set-Cookie", "")  # same session: session cookie only

    time.sleep(SESSION_TTL + 0.5)  # Redis lets the session expire; the browser keeps its cookies here
    expired = track(alice, base, "/docs")
    assert expired.status_code == 200
    assert alice.cookies["visitor_id"].split(".")[0] == visitor.split(".")[0]  # visitor id reused

    assert track(bob, base, "/").status_code == 200

    today = datetime.now(UTC).date().isoformat()

    def stats() -> dict:
        return requests.get(f"{base}/analytics/stats?start={today}&end={today}", headers=auth, timeout=10).json()

    wait_until(lambda: stats()["page_views"] == 4, 2, "events to be visible in stats within 2 s")
    assert stats() == {"total_visits": 3, "unique_visitors": 2, "page_views": 4,
                       "start": today, "end": today, "site": None}
    assert requests.get(f"{base}/analytics/stats", timeout=10).status_code == 401


def test_sigterm_stops_footfall_and_its_embedded_servers(server: dict) -> None:
    embedded = {}
    for name in ("redis", "mongodb"):
        state = server["data_dir"] / f"{name}.json"
        if state.exists():
            embedded[name] = json.loads(state.read_text())["port"]
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(30) is not None
    for name, port in embedded.items():
        wait_until(lambda port=port: not is_listening(port), 20, f"the embedded {name} to stop")
        assert not (server["data_dir"] / f"{name}.json").exists()


@pytest.mark.skipif(bool(os.environ.get("FOOTFALL_TEST_MONGODB_URI")),
                    reason="the suite runs on external servers: the embedded data dir is not used")
def test_embedded_data_survives_a_restart(server: dict) -> None:
    jar = requests.Session()
    assert track(jar, server["url"], "/kept").status_code == 200
    server["proc"].send_signal(signal.SIGTERM)
    server["proc"].wait(30)
    today = datetime.now(UTC).date().isoformat()
    out = subprocess.run([*footfall_command(), "stats", "--json", "--start", today, "--end", today],
                         env=server["env"], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout)["page_views"] == 1


def test_live_streams_through_serve_get_every_visit_and_do_not_block_shutdown(server: dict) -> None:
    """Streams spread over both workers all get a visit made through either of them; SIGTERM with
    streams open still stops everything (open streams are closed after a few seconds)."""
    from tests.live.streams import SSEReader

    port = int(server["url"].rsplit(":", 1)[1])
    auth = {"Authorization": f"Bearer {server['token']}"}
    streams = [SSEReader(port, "/analytics/live?site=default", auth) for _ in range(6)]
    assert [stream.status for stream in streams] == [200] * 6
    before = [stream.next_event(10).message["stats"]["totalVisits"] for stream in streams]
    assert track(requests.Session(), server["url"], "/").status_code == 200
    for stream, count in zip(streams, before, strict=True):
        update = stream.next_event(2.0)
        assert update is not None, "no update within 2 s"
        assert update.message["stats"]["totalVisits"] == count + 1
    stats = requests.get(f"{server['url']}/api/stats", headers=auth, timeout=10).json()
    assert stats["totalVisits"] == before[0] + 1
    server["proc"].send_signal(signal.SIGTERM)
    assert server["proc"].wait(30) is not None
    for stream in streams:
        stream.close()
