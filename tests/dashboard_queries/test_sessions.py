"""Raw sessions by cursor: every session once, in order, none skipped; the sites list."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from footfall.dashboard_queries import Period, list_sessions, list_sites
from footfall.dashboard_queries.sessions import decode_cursor, encode_cursor
from footfall.errors import InvalidQuery
from footfall.stores.mongo_writer import ensure_indexes
from tests.dashboard_queries.data import selected

ALL = Period(datetime(2025, 3, 1).date(), datetime(2025, 10, 31).date())


def every_page(db, limit: int, **kwargs) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        page = list_sessions(db, ALL.start, ALL.end, limit=limit, cursor=cursor, **kwargs)
        pages.append(page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize("limit", [1, 7, 45, 1000])
def test_cursor_pages_have_no_gap_and_no_repeat(seeded_db, dataset, limit: int) -> None:
    pages = every_page(seeded_db, limit, site="web")
    ids = [s["id"] for page in pages for s in page]
    expected = sorted((s for s in dataset.sessions if s["site"] == "web"), key=lambda s: (s["started_at"], s["_id"]))
    assert ids == [s["_id"] for s in expected]
    assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit


def test_filtered_sessions(seeded_db, dataset) -> None:
    ids = [s["id"] for page in every_page(seeded_db, 10, filters="page==/pricing") for s in page]
    visits, _ = selected(dataset, ALL.start, ALL.end, None, "page==/pricing")
    assert sorted(ids) == sorted(s["_id"] for s in visits)


def test_sessions_starting_in_the_same_millisecond_are_not_lost(mongo_db) -> None:
    ensure_indexes(mongo_db)
    at = datetime(2025, 5, 5, 12, tzinfo=UTC)
    mongo_db.sessions.insert_many([{"_id": f"same-{k}", "site": "web", "visitor_id": "v", "started_at": at,
                                    "last_seen_at": at + timedelta(seconds=k), "page_views": 1} for k in range(5)])
    seen, cursor = [], None
    while True:
        page = list_sessions(mongo_db, at, at + timedelta(hours=1), "web", limit=2, cursor=cursor)
        seen += [s["id"] for s in page["sessions"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"same-{k}" for k in range(5)]


def test_a_session_row(seeded_db, dataset) -> None:
    first = list_sessions(seeded_db, ALL.start, ALL.end, "blog", limit=1)["sessions"][0]
    doc = min((s for s in dataset.sessions if s["site"] == "blog"), key=lambda s: (s["started_at"], s["_id"]))
    assert first["id"] == doc["_id"]
    assert first["started_at"] == doc["started_at"].isoformat().replace("+00:00", "Z")
    assert first["duration"] == int((doc["last_seen_at"] - doc["started_at"]).total_seconds())
    assert (first["paths"], first["country"], first["events"]) == (doc["paths"], doc["country"], doc["events"])
    assert "event_ids" not in first


@pytest.mark.parametrize("cursor", ["nonsense", "W10", encode_cursor(datetime.now(UTC), "x")[:-3] + "!!!",
                                    "WyJhIiwiYiJd"])  # ["a","b"]
def test_a_forged_cursor_is_refused(seeded_db, cursor: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        list_sessions(seeded_db, ALL.start, ALL.end, cursor=cursor)
    assert info.value.parameter == "cursor"


def test_cursor_round_trip() -> None:
    at = datetime(2025, 5, 5, 12, 0, 0, 123000, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, "abc")) == (at, "abc")


@pytest.mark.parametrize("limit", [0, 1001])
def test_limits(seeded_db, limit: int) -> None:
    with pytest.raises(InvalidQuery) as info:
        list_sessions(seeded_db, ALL.start, ALL.end, limit=limit)
    assert info.value.parameter == "limit"


def test_sites(seeded_db) -> None:
    assert list_sites(seeded_db) == ["blog", "web"]
