"""The dashboard-query benchmark's data generator (``benchmarks/query_data.py``), its pure part: copies
move every instant, get their own visitors, sessions and page views, and add up to the size asked
for inside the window. No server, no timing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from benchmarks.query_data import STRIDE_HOURS, Seed, Window, copy_documents, copy_shift, generate

T0 = datetime(2015, 5, 17, 10, 5)
SITE = "semi"
SESSION_FIELDS = ("started_at", "last_seen_at", "first_view_at", "last_view_at")


def _session(sid: str, visitor: str, start: datetime, views: int) -> dict[str, Any]:
    end = start + timedelta(minutes=views - 1)
    return {"_id": sid, "site": SITE, "visitor_id": visitor, "visitor_number": int(visitor[-1]), "started_at": start,
            "last_seen_at": end, "first_view_at": start, "last_view_at": end, "page_views": views, "device": "mobile"}


def _seed() -> Seed:
    """Three visits (2, 1 and 3 page views) of two visitors over two days."""
    sessions = [_session("s1", "v1", T0, 2), _session("s2", "v2", T0 + timedelta(hours=5), 1),
                _session("s3", "v1", T0 + timedelta(days=1), 3)]
    views = [{"_id": f"{s['_id']}-p{i}", "site": SITE, "session_id": s["_id"], "visitor_id": s["visitor_id"],
              "visitor_number": s["visitor_number"], "ts": s["started_at"] + timedelta(minutes=i), "path": f"/{i}"}
             for s in sessions for i in range(s["page_views"])]
    visitors = [{"_id": f"{SITE}|v1", "site": SITE, "visitor_id": "v1", "visitor_number": 1, "first_seen_at": T0,
                 "last_seen_at": T0 + timedelta(days=1, minutes=2)},
                {"_id": f"{SITE}|v2", "site": SITE, "visitor_id": "v2", "visitor_number": 2,
                 "first_seen_at": T0 + timedelta(hours=5), "last_seen_at": T0 + timedelta(hours=5)}]
    return Seed(SITE, sessions, views, visitors)


JUNE = Window(datetime(2015, 6, 1), datetime(2015, 6, 30, 22))


def test_a_copy_moves_every_instant_by_its_shift_and_keeps_the_rest() -> None:
    seed, shift = _seed(), timedelta(days=15, hours=3)
    copy = copy_documents(seed, 4, shift)
    for original, copied in zip(seed.sessions, copy.sessions, strict=True):
        assert all(copied[name] == original[name] + shift for name in SESSION_FIELDS)
        assert (copied["page_views"], copied["device"], copied["site"]) == (original["page_views"], "mobile", SITE)
    assert [v["ts"] - shift for v in copy.page_views] == [v["ts"] for v in seed.page_views]
    assert [v["path"] for v in copy.page_views] == [v["path"] for v in seed.page_views]
    assert [(v["first_seen_at"] - shift, v["last_seen_at"] - shift) for v in copy.visitors] == [
        (v["first_seen_at"], v["last_seen_at"]) for v in seed.visitors]
    assert seed.sessions[0]["started_at"] == T0  # the seed itself is left alone


def test_each_copy_has_its_own_visitors_sessions_and_page_views_linked_together() -> None:
    seed = _seed()
    copies = [copy_documents(seed, k, timedelta(0)) for k in range(3)]
    for field, docs in (("sessions", "sessions"), ("page_views", "page_views"), ("visitors", "visitors")):
        ids = [doc["_id"] for c in copies for doc in getattr(c, docs)]
        assert len(set(ids)) == len(ids) == 3 * len(getattr(seed, docs)), field
    visitor_sets = [{s["visitor_id"] for s in c.sessions} for c in copies]
    assert len(visitor_sets[0]) == 2 and not visitor_sets[0] & visitor_sets[1] and not visitor_sets[1] & visitor_sets[2]
    for c in copies:
        by_id = {s["_id"]: s for s in c.sessions}
        assert all(len(sid) == 22 for sid in by_id)  # the middleware's session id shape
        assert all(by_id[v["session_id"]]["visitor_id"] == v["visitor_id"] for v in c.page_views)
        assert {v["_id"] for v in c.visitors} == {f"{SITE}|{s['visitor_id']}" for s in c.sessions}
    assert [v["visitor_number"] for c in copies for v in c.visitors] == [1, 2, 3, 4, 5, 6]
    assert copy_documents(seed, 1, timedelta(0)) == copies[1]  # derived, not random


def test_a_partial_copy_takes_whole_visits_in_start_order() -> None:
    part = copy_documents(_seed(), 2, timedelta(0), page_views=3)
    assert [s["page_views"] for s in part.sessions] == [2, 1]
    assert len(part.page_views) == 3 and len(part.visitors) == 2


@pytest.mark.parametrize(("size", "copies", "page_views"), [
    pytest.param(6, 1, 6, id="one whole copy"),
    pytest.param(60, 10, 60, id="ten whole copies"),
    pytest.param(62, 11, 62, id="ten copies and a visit of two"),
    pytest.param(64, 11, 66, id="a visit is never cut: up to one visit more"),
])
def test_copies_add_up_to_the_size_inside_the_window(size: int, copies: int, page_views: int) -> None:
    parts = list(generate(_seed(), size, JUNE))
    assert len(parts) == copies
    assert sum(len(p.page_views) for p in parts) == page_views
    assert sum(s["page_views"] for p in parts for s in p.sessions) == page_views
    instants = [s[name] for p in parts for s in p.sessions for name in SESSION_FIELDS]
    instants += [v["ts"] for p in parts for v in p.page_views]
    assert JUNE.start <= min(instants) and max(instants) < JUNE.end


def test_copies_spread_over_the_window_in_whole_hours() -> None:
    base, free = JUNE.placement(_seed())
    assert base == datetime(2015, 6, 1) - datetime(2015, 5, 17)
    last = T0 + timedelta(days=1, minutes=2)  # the seed's latest instant
    assert last + base + timedelta(hours=free - 1) < JUNE.end <= last + base + timedelta(hours=free)
    assert [copy_shift(k, base, free) - base for k in range(3)] == [timedelta(0), timedelta(hours=STRIDE_HOURS),
                                                                    timedelta(hours=2 * STRIDE_HOURS)]
    starts = {p.sessions[0]["started_at"] for p in generate(_seed(), 6 * 40, JUNE)}
    assert len(starts) == 40  # forty copies, forty different places


def test_a_seed_that_does_not_fit_or_an_empty_size_is_refused() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        list(generate(_seed(), 6, Window(datetime(2015, 6, 1), datetime(2015, 6, 2))))
    with pytest.raises(ValueError, match="positive size"):
        list(generate(_seed(), 0, JUNE))


def test_a_copy_carries_the_rollup_marks_as_a_builder_pass_leaves_them() -> None:
    seed, shift = _seed(), timedelta(days=15, hours=3)
    for session in seed.sessions:
        session["hours"] = [session["started_at"].replace(minute=0)]
        session["rollup_dirty"] = "token"
    for visitor in seed.visitors:
        visitor["rollup_dirty"] = "token"
    copy = copy_documents(seed, 1, shift)
    assert [s["hours"] for s in copy.sessions] == [[s["started_at"].replace(minute=0)] for s in copy.sessions]
    assert not any("rollup_dirty" in doc for doc in (*copy.sessions, *copy.visitors))
    assert [v["rolled_first_seen_hour"] for v in copy.visitors] == [
        v["first_seen_at"].replace(minute=0, second=0, microsecond=0) for v in copy.visitors]
    assert all(v["rolled_first_seen_hour"].tzinfo is None for v in copy.visitors)  # naive UTC, as pymongo reads
