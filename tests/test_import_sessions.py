"""``footfall.import_sessions``: the importer's sessionizer, without a store (documents collected)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from footfall.import_sessions import Sessionizer, event_id, external_referrer_host

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TTL = 1800  # seconds
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def sessionizer(views: list[dict[str, Any]], sessions: list[dict[str, Any]]) -> Sessionizer:
    return Sessionizer(site="s", session_ttl=TTL, hosts=("example.com",), place_of=lambda ip: (None, None),
                       on_page_view=views.append, on_session=sessions.append)


def feed(machine: Sessionizer, at: datetime, ip: str, path: str = "/") -> None:
    machine.expire(at)
    machine.page_view(at, client_ip=ip, user_agent=UA, target=path, referrer="",
                      view_id=event_id("s", f"{ip} {at} {path}", 0))


def test_memory_holds_only_visitors_a_ttl_can_still_continue() -> None:
    """A thousand visitors, one every 10 minutes, each for one page: at most 3 are remembered (the
    ones less than 30 minutes old), and each session is finished as soon as the clock passes it."""
    views: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    machine = sessionizer(views, sessions)
    for n in range(1000):
        feed(machine, T0 + timedelta(minutes=10 * n), f"10.0.{n // 250}.{n % 250}")
        assert len(sessions) >= n - 2
    machine.finish_all()
    assert machine.peak_browsers == 3
    assert (len(views), len(sessions), machine.sessions) == (1000, 1000, 1000)


def test_a_forgotten_visitor_returns_with_the_same_id_and_a_new_session() -> None:
    views: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []
    machine = sessionizer(views, sessions)
    feed(machine, T0, "203.0.113.7", "/a")
    feed(machine, T0 + timedelta(seconds=TTL - 1), "203.0.113.7", "/b")
    feed(machine, T0 + timedelta(seconds=2 * TTL - 1), "203.0.113.7", "/c")  # exactly TTL later: expired
    machine.finish_all()
    assert [(s["entry_path"], s["exit_path"], s["page_views"]) for s in sessions] == [("/a", "/b", 2), ("/c", "/c", 1)]
    assert len({s["visitor_id"] for s in sessions}) == 1
    assert all(len(s["rollup_dirty"]) == 24 and s["hours"] for s in sessions)


@pytest.mark.parametrize(("referrer", "hosts", "expected"), [
    pytest.param("https://www.example.com/a", ("example.com",), None, id="www. of the host"),
    pytest.param("https://shop.example.com/a", ("example.com", "shop.example.com"), None, id="the second host"),
    pytest.param("https://shop.example.com/a", ("example.com",), "shop.example.com", id="a host not listed"),
    pytest.param("https://news.example/x", (), "news.example", id="no hosts: every referrer is external"),
    pytest.param("", ("example.com",), None, id="no referrer"),
])
def test_external_referrer_host(referrer: str, hosts: tuple[str, ...], expected: str | None) -> None:
    assert external_referrer_host(referrer, hosts) == expected
