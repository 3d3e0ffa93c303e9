"""The rollups (issue 11): built from the raw collections, exact, repaired by the next pass.

Data goes in the way production writes it (:func:`footfall.stores.mongo_writer.write_batch`, the
drain's writer; :func:`footfall.importer.import_log`), with what makes rollups hard: visits across
midnight and across Berlin's spring DST change, page views and custom events out of order and late
(hours after their visit was built), retried entries, visitors without a number, a log imported
twice. Every figure the dashboard shows is then asked of the rollups and of the raw collections, and
the two answers must be equal, with the rollups actually answering (``source``).
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import redis
from click.testing import CliRunner
from pymongo.database import Database
from pyroaring import BitMap

from footfall.cli import main
from footfall.dashboard_queries import DIMENSIONS, Period, breakdown, summarize, timeseries
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.drain import Drain
from footfall.importer import import_log
from footfall.middleware.tracker import page_view_fields
from footfall.stores.cells import Cell, decode_rows, encode_rows
from footfall.stores.event_codec import QueuedRecords, decode_entry, encode_payload
from footfall.stores.mongo_writer import ensure_indexes, write_batch
from footfall.stores.rollup_build import _Lease, dirty_hours, is_built, rebuild, refresh, refresh_site
from footfall.stores.rollup_check import check
from footfall.stores.rollup_marks import hour_of, token_prefix
from footfall.stores.visitor_numbers import reserve_block
from tests.conftest import SHARED_DATA

UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
      "Version/17.5 Mobile/15E148 Safari/604.1")
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
T0 = datetime(2026, 3, 27, 20, 0, tzinfo=UTC)  # Berlin springs forward on 2026-03-29
PATHS = ["/", "/pricing", "/docs", "/blog/a", "/blog/b?utm_source=news&utm_medium=mail", "/?utm_campaign=x"]
SITE = "web"
LOG = SHARED_DATA / "access-logs" / "semicomplete-2015-05.log"


def entry(session_id: str, new: bool, visitor: str, at: datetime, number: int | None, *,
          path: str | None = None, event: str | None = None, referrer: str = "", ua: str = UA,
          country: str | None = "DE", event_id: str | None = None) -> QueuedRecords:
    """One stream entry as the request path queues it, decoded as the drain decodes it."""
    view = None
    if path is not None or event is not None:
        page, _, query = (path or "/").partition("?")
        view = page_view_fields(site=SITE, path=page, query=query, referrer=referrer, title="", event_id=event_id,
                                route=page if page != "/docs" else None, name=event)
    payload = encode_payload(site=SITE, visitor_id=visitor, at=at, referrer=referrer, user_agent=ua, page_view=view,
                             host="shop.example", country=country, city=None)
    return decode_entry({"e": payload, "sid": session_id, "new": "1" if new else "0",
                         "vn": "" if number is None else str(number)})


def traffic(rng: random.Random, visits: int, start: datetime, span_hours: int, tag: str) -> list[QueuedRecords]:
    """Entries of ``visits`` visits of 25 visitors (some without a number), starting in the span."""
    entries = []
    for k in range(visits):
        visitor = rng.randrange(25)
        number = None if visitor % 7 == 3 else visitor + 1
        sid = f"{tag}-s{k}"
        at = start + timedelta(seconds=rng.randrange(span_hours * 3600))
        country = rng.choice(["DE", "FR", None])
        ua = rng.choice([UA, DESKTOP])
        referrer = rng.choice(["", "https://www.google.com/", "https://news.example/item"])
        views = sorted(rng.sample(range(1, 3000), rng.choice([0, 1, 1, 2, 4])))
        first_path = rng.choice(PATHS)
        entries.append(entry(sid, True, f"v{visitor}", at, number, path=first_path, referrer=referrer, ua=ua,
                             country=country))
        for offset in views:
            entries.append(entry(sid, False, f"v{visitor}", at + timedelta(seconds=offset), number,
                                 path=rng.choice(PATHS), ua=ua, country=country))
        for _ in range(rng.choice([0, 0, 1, 2])):
            entries.append(entry(sid, False, f"v{visitor}", at + timedelta(seconds=rng.randrange(1, 3000)), number,
                                 event=rng.choice(["signup", "play"]), ua=ua, country=country))
    return entries


def write_shuffled(db: Database, rng: random.Random, entries: list[QueuedRecords]) -> None:
    """Write in random order and random batches, a tenth of the entries twice (retried batches)."""
    entries = entries + rng.sample(entries, len(entries) // 10)
    rng.shuffle(entries)
    i = 0
    while i < len(entries):
        size = rng.randrange(1, 40)
        write_batch(db, [(f"{i + j}-0", records) for j, records in enumerate(entries[i:i + size])])
        i += size


def period(first: str, last: str, tz: str = "UTC") -> Period:
    return Period(date.fromisoformat(first), date.fromisoformat(last), resolve_timezone(tz))


PERIODS = [
    period("2026-03-27", "2026-03-31"), period("2026-03-28", "2026-03-30", "Europe/Berlin"),
    period("2026-03-29", "2026-03-29", "Europe/Berlin"), period("2026-03-28", "2026-03-28", "America/New_York"),
]
FILTERS = [None, "country==DE", "country==(none)", "page==/pricing", "device==mobile", "event==signup",
           "source==google.com", "utm_source==news", "entry_page==/docs"]


def assert_rollups_equal_raw(db: Database) -> None:
    """Every summary (compared with the period before), time series and breakdown: rollups == raw."""
    for days in PERIODS:
        before = days.previous("previous_period")
        for filters in FILTERS:
            found = summarize(db, days.start, days.end, SITE, filters=filters, previous=(before.start, before.end))
            raw = summarize(db, days.start, days.end, SITE, filters=filters, previous=(before.start, before.end),
                            rollups=False)
            assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
            assert found == raw, (days, filters)
        for metric in ("visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"):
            for interval in ("hour", "day"):
                found = timeseries(db, days, metric, interval, SITE, filters="device==desktop" if metric == "visits"
                                   else None)
                raw = timeseries(db, days, metric, interval, SITE, filters="device==desktop" if metric == "visits"
                                 else None, rollups=False)
                assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
                assert found == raw, (days, metric, interval)
        for dimension in DIMENSIONS:
            found = breakdown(db, days.start, days.end, dimension, SITE, limit=1000)
            raw = breakdown(db, days.start, days.end, dimension, SITE, limit=1000, rollups=False)
            assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
            assert found == raw, (days, dimension)


@pytest.fixture
def db(mongo_db: Database) -> Database:
    ensure_indexes(mongo_db)
    reserve_block(mongo_db, SITE, 100)  # the numbers the entries carry (1..25) were handed out from it
    return mongo_db


def test_rollups_equal_the_raw_collections_through_late_and_retried_events(db: Database) -> None:
    rng = random.Random(11)
    write_shuffled(db, rng, traffic(rng, 160, T0, 80, "a"))
    assert not is_built(db, SITE)
    assert refresh(db) > 0
    assert is_built(db, SITE)
    assert dirty_hours(db, SITE) == set()
    assert check(db, date(2026, 3, 26), date(2026, 4, 1)) == []
    assert_rollups_equal_raw(db)

    # late events: page views and custom events of visits built long ago, new visits, retries; the
    # builder has not run yet, so the dirty hours are computed raw on the spot
    late = traffic(rng, 40, T0 + timedelta(hours=30), 20, "b")  # fewer dirty hours than MAX_DIRTY_HOURS
    old = list(db.sessions.find({"site": SITE, "page_views": 1}, {"visitor_id": 1, "started_at": 1}).limit(12))
    for doc in old:
        late.append(entry(doc["_id"], False, doc["visitor_id"], doc["started_at"] + timedelta(minutes=25), None,
                          path="/late", ua=UA))
    write_shuffled(db, rng, late)
    assert dirty_hours(db, SITE)
    assert check(db, date(2026, 3, 26), date(2026, 4, 1)) != []  # the stored rollups are behind ...
    assert_rollups_equal_raw(db)  # ... and the answers are exact all the same
    refresh(db)
    assert dirty_hours(db, SITE) == set()
    assert check(db, date(2026, 3, 26), date(2026, 4, 1)) == []
    assert_rollups_equal_raw(db)


def test_a_builder_that_dies_midway_is_repaired_by_the_next_pass(db: Database) -> None:
    rng = random.Random(5)
    write_shuffled(db, rng, traffic(rng, 60, T0, 30, "a"))
    refresh(db)
    write_shuffled(db, rng, traffic(rng, 30, T0, 30, "b"))
    # a pass that built one day and died before clearing any mark
    rebuild(db, date(2026, 3, 28), date(2026, 3, 28), SITE)
    assert dirty_hours(db, SITE)
    refresh(db)
    assert dirty_hours(db, SITE) == set()
    assert check(db, date(2026, 3, 27), date(2026, 3, 29)) == []


def test_check_reports_a_lost_rollup_and_rebuild_repairs_it_idempotently(db: Database) -> None:
    rng = random.Random(3)
    write_shuffled(db, rng, traffic(rng, 50, T0, 30, "a"))
    refresh(db)
    doc = db.rollups.find_one({"level": "hour", "kind": "total"})
    db.rollups.delete_one({"_id": doc["_id"]})  # as if a rollup write had been lost
    differences = check(db, date(2026, 3, 27), date(2026, 3, 29))
    assert [(d.level, d.at, d.kind) for d in differences if d.level == "hour"] == [("hour", doc["at"], "total")]
    assert {d.kind for d in differences} == {"total"}
    rebuild(db, date(2026, 3, 27), date(2026, 3, 29))
    assert check(db, date(2026, 3, 27), date(2026, 3, 29)) == []
    first = {d["_id"]: d for d in db.rollups.find()}
    rebuild(db, date(2026, 3, 27), date(2026, 3, 29))
    assert {d["_id"]: d for d in db.rollups.find()} == first


def test_a_log_imported_twice_rolls_up_once(db: Database) -> None:
    summary = import_log(LOG, db, site="semi", session_ttl=1800, host="semicomplete.com")
    refresh(db)
    days = Period(date(2015, 5, 17), date(2015, 5, 20), resolve_timezone("UTC"))
    once = summarize(db, days.start, days.end, "semi")
    assert once["source"] == "rollups"
    assert once["total_visits"] == summary.sessions and once["page_views"] == summary.page_views
    import_log(LOG, db, site="semi", session_ttl=1800, host="semicomplete.com")
    again = summarize(db, days.start, days.end, "semi")  # every hour dirty again: read raw, the same
    assert (again.pop("source"), {k: v for k, v in once.items() if k != "source"}) == ("raw", again)
    refresh(db)
    assert summarize(db, days.start, days.end, "semi") == once
    assert check(db, date(2015, 5, 16), date(2015, 5, 21), "semi") == []
    raw = summarize(db, days.start, days.end, "semi", rollups=False)
    assert {k: v for k, v in once.items() if k != "source"} == {k: v for k, v in raw.items() if k != "source"}


def test_cells_merge_visits_per_visitor_exactly() -> None:
    a, b = Cell(), Cell()
    for number in (1, 2, 2, 3):
        a.add_visit(number, bounce=False, duration_ms=10)
    for number in (2, 3, 3, 4):
        b.add_visit(number, bounce=True, duration_ms=0)
    a.merge(b)
    assert (a.visits, a.unique_visitors, a.bounces, a.duration_ms) == (8, 4, 4, 40)
    assert a.repeats == {2: 2, 3: 2}  # 2: three visits, 3: three visits
    assert a.new_visits(BitMap([2, 4])) == 4  # visitor 2's three visits and visitor 4's one
    assert a.new_visits(BitMap()) == 0
    again = decode_rows(encode_rows({None: a, "x": b}))
    assert (again[None].visitors, again[None].repeats, again[None].visits) == (a.visitors, a.repeats, 8)
    assert again["x"].repeats == {3: 1}


def test_one_builder_per_site_at_a_time(db: Database) -> None:
    rng = random.Random(8)
    write_shuffled(db, rng, traffic(rng, 20, T0, 10, "a"))
    refresh(db)
    write_shuffled(db, rng, traffic(rng, 10, T0, 10, "b"))
    other = _Lease(db, SITE)
    assert other.take()  # another process is building this site
    assert refresh_site(db, SITE) == 0  # this pass leaves the site to it ...
    assert dirty_hours(db, SITE)  # ... and every mark stays
    other.give_back()
    assert refresh_site(db, SITE) > 0
    assert dirty_hours(db, SITE) == set()


def test_rollups_commands(db: Database, mongodb_uri: str, redis_url: str, monkeypatch) -> None:
    rng = random.Random(2)
    write_shuffled(db, rng, traffic(rng, 30, T0, 20, "a"))
    refresh(db)
    monkeypatch.setenv("FOOTFALL_REDIS_URL", redis_url)
    monkeypatch.setenv("FOOTFALL_MONGODB_URI", mongodb_uri)
    days = ["--start", "2026-03-27", "--end", "2026-03-28"]
    clean = CliRunner().invoke(main, ["rollups", "check", *days, "--site", SITE])
    assert clean.exit_code == 0, clean.output
    assert "0 difference(s)" in clean.output
    lost = db.rollups.find_one({"level": "day", "kind": "country"})
    db.rollups.delete_one({"_id": lost["_id"]})
    found = CliRunner().invoke(main, ["rollups", "check", *days])
    assert found.exit_code == 1
    assert f"{SITE} day {lost['at']:%Y-%m-%dT%H}Z country: stored {{}}" in found.output
    rebuilt = CliRunner().invoke(main, ["rollups", "rebuild", *days, "--site", SITE, "--quiet"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "48 hours" in rebuilt.output
    assert CliRunner().invoke(main, ["rollups", "check", *days]).exit_code == 0
    bad = CliRunner().invoke(main, ["rollups", "rebuild", "--start", "2026-05-02", "--end", "2026-05-01"])
    assert bad.exit_code == 2 and "before start" in bad.output
    bad = CliRunner().invoke(main, ["rollups", "check", "--start", "May 1", "--end", "2026-05-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_a_visit_whose_visitor_is_not_written_yet_is_read_raw(db: Database) -> None:
    rng = random.Random(4)
    write_shuffled(db, rng, traffic(rng, 20, T0, 10, "a"))
    refresh(db)
    at = T0 + timedelta(hours=2, minutes=5)
    write_batch(db, [("1-0", entry("lonely", True, "nobody", at, None, path="/"))])
    db.visitors.delete_one({"_id": f"{SITE}|nobody"})  # as between the drain's session and visitors writes
    days = period("2026-03-27", "2026-03-28")
    found = summarize(db, days.start, days.end, SITE)
    raw = summarize(db, days.start, days.end, SITE, rollups=False)
    assert (found.pop("source"), raw.pop("source")) == ("raw", "raw")  # the rollups could not count it
    assert found == raw
    refresh(db)  # the builder leaves that hour pending instead of counting the visit wrongly
    assert hour_of(at) in dirty_hours(db, SITE)
    assert summarize(db, days.start, days.end, SITE)["source"] == "raw"
    write_batch(db, [("2-0", entry("lonely", False, "nobody", at + timedelta(minutes=1), None, path="/x"))])
    refresh(db)  # the visitor is written (and numbered) now: the hour is built, nothing is pending
    assert dirty_hours(db, SITE) == set()
    found = summarize(db, days.start, days.end, SITE)
    raw = summarize(db, days.start, days.end, SITE, rollups=False)
    assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
    assert found == raw


def test_marks_older_than_the_clock_skew_are_cleared_in_one_update(db: Database) -> None:
    rng = random.Random(9)
    write_shuffled(db, rng, traffic(rng, 40, T0, 20, "a"))
    old = token_prefix(datetime.now(UTC) - timedelta(hours=2)) + "00000000"  # as written two hours ago
    db.sessions.update_many({}, {"$set": {"rollup_dirty": old}})
    db.visitors.update_many({}, {"$set": {"rollup_dirty": old}})
    lonely = T0 + timedelta(hours=3)
    write_batch(db, [("1-0", entry("lonely", True, "nobody", lonely, None, path="/"))])
    db.visitors.delete_one({"_id": f"{SITE}|nobody"})
    db.sessions.update_one({"_id": "lonely"}, {"$set": {"rollup_dirty": old}})
    refresh(db)
    waiting = {d["_id"] for d in db.sessions.find({"hours": hour_of(lonely)})}  # that hour is not built yet
    assert "lonely" in waiting
    assert {d["_id"] for d in db.sessions.find({"rollup_dirty": {"$gt": ""}})} == waiting
    for visitor in db.visitors.find():
        if hour_of(visitor["first_seen_at"]) == hour_of(lonely):  # first seen in the hour that waits
            assert "rollup_dirty" in visitor
        else:
            assert "rollup_dirty" not in visitor
            assert visitor["rolled_first_seen_hour"] == hour_of(visitor["first_seen_at"])
    assert dirty_hours(db, SITE) == {hour for d in db.sessions.find({"_id": {"$in": sorted(waiting)}})
                                     for hour in d["hours"]}  # the waiting sessions' hours are read raw
    assert check(db, date(2026, 3, 27), date(2026, 3, 28)) != []  # only that hour: the visit is not counted
    assert {d.at for d in check(db, date(2026, 3, 27), date(2026, 3, 28)) if d.level == "hour"} == {hour_of(lonely)}


def test_a_running_drain_builds_the_rollups_in_its_own_thread(db: Database, redis_url: str, redis_client) -> None:
    rng = random.Random(12)
    write_shuffled(db, rng, traffic(rng, 30, T0, 10, "a"))
    drain = Drain(redis.Redis.from_url(redis_url, socket_timeout=10), db, consumer="t", block=0.2, rollup_every=0.2)
    stop = threading.Event()
    runner = threading.Thread(target=drain.run, args=(stop,), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not (is_built(db, SITE) and not dirty_hours(db, SITE)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert is_built(db, SITE) and dirty_hours(db, SITE) == set()
        write_shuffled(db, rng, traffic(rng, 5, T0, 10, "b"))  # written while the drain runs: built next pass
        deadline = time.monotonic() + 60
        while dirty_hours(db, SITE) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert dirty_hours(db, SITE) == set()
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert check(db, date(2026, 3, 27), date(2026, 3, 28)) == []
