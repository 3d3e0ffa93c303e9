"""``rollups_hourly``: increments (pure), the drain's and the importer's "only what this write proved
new" rule, the rebuild, and ``footfall rollups rebuild``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from pymongo import UpdateOne
from pymongo.database import Database

from footfall.cli import main
from footfall.importer import import_log
from footfall.middleware.tracker import page_view_fields
from footfall.stores.event_codec import QueuedRecords, decode_entry, encode_payload
from footfall.stores.mongo_writer import write_batch
from footfall.stores.rollups import (
    hour_of,
    rebuild_rollups,
    rollup_id,
    rollup_increments,
    rollup_updates,
)
from tests.conftest import SHARED_DATA

T0 = datetime(2026, 5, 1, 9, 40, tzinfo=UTC)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0"
SEMICOMPLETE = SHARED_DATA / "access-logs" / "semicomplete-2015-05.log"


def rollups(db: Database) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: {k: v for k, v in doc.items() if k != "_id"} for doc in db.rollups_hourly.find()}


def counts(db: Database) -> dict[str, tuple[int, int, int]]:
    """Rollup id -> (visits, page views, custom events), hours with all zeros left out."""
    found = {key: (doc["visits"], doc["page_views"], doc["custom_events"]) for key, doc in rollups(db).items()}
    return {key: value for key, value in found.items() if any(value)}


# --- pure --------------------------------------------------------------------------------------------

def test_increments_are_grouped_per_site_and_utc_hour() -> None:
    paris = timezone(timedelta(hours=2))
    increments = rollup_increments(
        visits=[("a", T0), ("a", T0 + timedelta(minutes=19)), ("b", T0)],
        page_views=[("a", T0), ("a", T0 + timedelta(minutes=20)), ("a", datetime(2026, 5, 1, 11, 59, tzinfo=paris))],
        custom_events=[("b", T0 + timedelta(minutes=5))],
    )
    nine, ten = datetime(2026, 5, 1, 9, tzinfo=UTC), datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert increments == {
        ("a", nine): {"visits": 2, "page_views": 2, "custom_events": 0},
        ("a", ten): {"visits": 0, "page_views": 1, "custom_events": 0},
        ("b", nine): {"visits": 1, "page_views": 0, "custom_events": 1},
    }
    assert rollup_increments() == {}


def test_rollup_ids_and_hours() -> None:
    assert rollup_id("shop", datetime(2026, 5, 1, 9, 59, 59, 999, tzinfo=UTC)) == "shop|2026-05-01T09"
    assert hour_of(datetime(2026, 5, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2026, 4, 30, 23, tzinfo=UTC)
    assert hour_of(datetime(2026, 5, 1, 9, 30)) == datetime(2026, 5, 1, 9, tzinfo=UTC), "naive is UTC"


def test_one_upsert_per_bucket() -> None:
    hour = datetime(2026, 5, 1, 9, tzinfo=UTC)
    [op] = rollup_updates({("shop", hour): {"visits": 2, "page_views": 5, "custom_events": 0}})
    assert op == UpdateOne({"_id": "shop|2026-05-01T09"},
                           {"$inc": {"visits": 2, "page_views": 5, "custom_events": 0},
                            "$setOnInsert": {"site": "shop", "hour": hour}}, upsert=True)
    assert op != UpdateOne({"_id": "shop|2026-05-01T09"}, {"$inc": {"visits": 2}}, upsert=True)


# --- the drain's writes --------------------------------------------------------------------------------

def entries(site: str = "web") -> list[tuple[str, QueuedRecords]]:
    """Two visits across two hours: page views, a custom event, a start without a page view, and a
    retried page view (same event id) inside the batch."""
    retried = str(uuid.uuid4())
    rows: list[tuple[str, bool, datetime, dict[str, Any] | None]] = [
        ("s1", True, T0, page_view_fields(site=site, path="/", query="", referrer="", title="", event_id=None)),
        ("s1", False, T0 + timedelta(minutes=5),
         page_view_fields(site=site, path="/a", query="", referrer="", title="", event_id=retried)),
        ("s1", False, T0 + timedelta(minutes=6),
         page_view_fields(site=site, path="/a", query="", referrer="", title="", event_id=retried)),
        ("s1", False, T0 + timedelta(minutes=25),
         page_view_fields(site=site, path="/b", query="", referrer="", title="", event_id=None, name="signup")),
        ("s2", True, T0 + timedelta(minutes=30), None),
        ("s2", False, T0 + timedelta(minutes=31),
         page_view_fields(site=site, path="/c", query="", referrer="", title="", event_id=None)),
    ]
    batch = []
    for number, (sid, new, at, view) in enumerate(rows):
        payload = encode_payload(site=site, visitor_id=f"v-{sid}", at=at, referrer="", user_agent=UA, page_view=view)
        batch.append((f"{number}-0", decode_entry({"e": payload, "sid": f"{site}-{sid}", "new": "1" if new else "0"})))
    return batch


EXPECTED = {"web|2026-05-01T09": (1, 2, 0), "web|2026-05-01T10": (1, 1, 1)}


def test_the_drain_counts_what_it_wrote(mongo_db) -> None:
    write_batch(mongo_db, entries())
    assert counts(mongo_db) == EXPECTED
    doc = mongo_db.rollups_hourly.find_one({"_id": "web|2026-05-01T09"})
    assert (doc["site"], doc["hour"]) == ("web", datetime(2026, 5, 1, 9, tzinfo=UTC))


def test_a_batch_written_twice_counts_once_in_rollups_and_sessions(mongo_db) -> None:
    batch = entries()
    write_batch(mongo_db, batch)
    sessions_before = list(mongo_db.sessions.find().sort("_id"))
    write_batch(mongo_db, batch)  # a drain that crashed before acknowledging: the next one writes it again
    write_batch(mongo_db, batch[3:] + batch[:3])  # and again, in another order
    assert counts(mongo_db) == EXPECTED
    assert list(mongo_db.sessions.find().sort("_id")) == sessions_before
    assert [(s["page_views"], s["events"]) for s in sessions_before] == [(2, 1), (1, 0)]
    assert mongo_db.page_views.count_documents({}) == 3
    assert mongo_db.custom_events.count_documents({}) == 1


def test_a_start_written_after_its_page_view_still_counts_one_visit(mongo_db) -> None:
    batch = entries()
    write_batch(mongo_db, batch[5:])  # s2's page view first
    write_batch(mongo_db, batch[:5])
    write_batch(mongo_db, batch)
    assert counts(mongo_db) == EXPECTED


def test_lost_increments_only_under_count_and_a_rebuild_restores_them(mongo_db) -> None:
    """A crash between the raw writes and the $inc: the retried batch adds nothing (its records are
    not new any more), so the rollups under-count until a rebuild, never over-count."""
    batch = entries()
    write_batch(mongo_db, batch)
    mongo_db.rollups_hourly.delete_many({})  # the increments that the crash lost
    write_batch(mongo_db, batch)
    assert counts(mongo_db) == {}
    assert rebuild_rollups(mongo_db, date(2026, 5, 1), date(2026, 5, 1)) == 2
    assert counts(mongo_db) == EXPECTED


def test_the_drain_rollups_equal_a_rebuild(mongo_db) -> None:
    for site in ("web", "blog"):
        write_batch(mongo_db, entries(site))
    drained = rollups(mongo_db)
    assert len(drained) == 4
    assert rebuild_rollups(mongo_db, date(2026, 5, 1), date(2026, 5, 1)) == 4
    assert rollups(mongo_db) == drained
    assert rebuild_rollups(mongo_db, date(2026, 5, 1), date(2026, 5, 1)) == 4
    assert rollups(mongo_db) == drained, "a rebuild is idempotent"


def test_a_rebuild_sets_stale_hours_to_zero_and_keeps_to_its_range_and_site(mongo_db) -> None:
    write_batch(mongo_db, entries("web"))
    write_batch(mongo_db, entries("blog"))
    hour = datetime(2026, 5, 1, 15, tzinfo=UTC)
    stale = {"site": "web", "hour": hour, "visits": 9, "page_views": 9, "custom_events": 9}
    outside = {"site": "web", "hour": hour + timedelta(days=1), "visits": 5, "page_views": 5, "custom_events": 5}
    mongo_db.rollups_hourly.insert_many([{"_id": rollup_id("web", hour), **stale},
                                         {"_id": rollup_id("web", hour + timedelta(days=1)), **outside}])
    mongo_db.rollups_hourly.update_one({"_id": "blog|2026-05-01T09"}, {"$set": {"visits": 40}})

    assert rebuild_rollups(mongo_db, date(2026, 5, 1), date(2026, 5, 1), site="web") == 3
    assert counts(mongo_db)["web|2026-05-01T09"] == EXPECTED["web|2026-05-01T09"]
    assert rollups(mongo_db)["web|2026-05-01T15"] == {**stale, "visits": 0, "page_views": 0, "custom_events": 0}
    assert counts(mongo_db)["web|2026-05-02T15"] == (5, 5, 5), "outside the range: untouched"
    assert counts(mongo_db)["blog|2026-05-01T09"][0] == 40, "another site: untouched"


def test_a_rebuild_with_the_end_before_the_start_is_refused(mongo_db) -> None:
    with pytest.raises(ValueError, match="before start"):
        rebuild_rollups(mongo_db, date(2026, 5, 2), date(2026, 5, 1))


# --- the importer ------------------------------------------------------------------------------------

def test_imported_log_rollups_equal_a_rebuild_and_a_second_import_adds_nothing(mongo_db) -> None:
    """The whole semicomplete log (10,000 lines, 1,791 page views, 1,180 visits)."""
    summary = import_log(SEMICOMPLETE, mongo_db, site="semi", session_ttl=1800, host="semicomplete.com")
    imported = rollups(mongo_db)
    assert sum(doc["visits"] for doc in imported.values()) == summary.sessions == 1180
    assert sum(doc["page_views"] for doc in imported.values()) == summary.page_views == 1791
    by_hour = {}
    for session in mongo_db.sessions.find({}, {"started_at": 1}):
        key = rollup_id("semi", session["started_at"])
        by_hour[key] = by_hour.get(key, 0) + 1
    assert {key: doc["visits"] for key, doc in imported.items() if doc["visits"]} == by_hour

    assert rebuild_rollups(mongo_db, date(2015, 5, 17), date(2015, 5, 20), site="semi") == len(imported)
    assert rollups(mongo_db) == imported
    import_log(SEMICOMPLETE, mongo_db, site="semi", session_ttl=1800, host="semicomplete.com")
    assert rollups(mongo_db) == imported


# --- the command ---------------------------------------------------------------------------------------

def test_rollups_rebuild_command(mongo_db, mongodb_uri, redis_url, monkeypatch) -> None:
    write_batch(mongo_db, entries())
    mongo_db.rollups_hourly.delete_many({})
    monkeypatch.setenv("FOOTFALL_REDIS_URL", redis_url)
    monkeypatch.setenv("FOOTFALL_MONGODB_URI", mongodb_uri)
    result = CliRunner().invoke(main, ["rollups", "rebuild", "--start", "2026-05-01", "--end", "2026-05-01",
                                       "--site", "web"])
    assert result.exit_code == 0, result.output
    assert "2 hourly documents" in result.output
    assert counts(mongo_db) == EXPECTED
    bad = CliRunner().invoke(main, ["rollups", "rebuild", "--start", "2026-05-02", "--end", "2026-05-01"])
    assert bad.exit_code == 2 and "before start" in bad.output
    bad = CliRunner().invoke(main, ["rollups", "rebuild", "--start", "May 1", "--end", "2026-05-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
