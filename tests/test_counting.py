"""Counting each drained event into its visit once, in one update per visit per batch
(footfall.stores.session_update, footfall.stores.counting), on the real MongoDB-wire server: the
crash windows of a batch, out-of-order events, two writers with different hints."""

from __future__ import annotations

import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.database import Database

from footfall.stores import mongo_writer
from footfall.stores.counting import COUNTING, was_counted
from footfall.stores.event_codec import QueuedRecords, decode_entry, encode_payload
from footfall.stores.mongo_writer import SpanCache, ensure_indexes, write_batch
from footfall.stores.rollup_marks import hour_of
from footfall.stores.session_update import COUNT_TOKENS_KEPT, SessionGroup, ViewSpan, choose_modes

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


class Crash(Exception):
    """Stands for the drain process dying at that point."""


def record(session: str, seconds: float, path: str = "/", *, new: bool = False, event_id: str | None = None,
           query: str = "", custom: str | None = None) -> QueuedRecords:
    view = {"event_id": event_id or str(uuid.uuid4()), "site": "web", "path": path, "query": query,
            "referrer": "", "title": ""}
    if custom is not None:
        view.update(type="custom", name=custom, props={})
    payload = encode_payload(site="web", visitor_id=f"v-{session}", at=T0 + timedelta(seconds=seconds),
                             referrer="https://news.example/", user_agent=UA, page_view=view)
    return decode_entry({"e": payload, "sid": session, "new": "1" if new else "0", "vn": ""})


def batch(*records: QueuedRecords) -> list[tuple[str, QueuedRecords]]:
    return [(f"{n + 1}-0", queued) for n, queued in enumerate(records)]


def crash_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    def crash(*args, **kwargs):
        raise Crash(name)
    monkeypatch.setattr(mongo_writer, name, crash)


@pytest.fixture
def db(mongo_db: Database) -> Database:
    ensure_indexes(mongo_db)
    return mongo_db


@pytest.mark.parametrize("step", [
    pytest.param("_write_groups", id="after the inserts, before the visit updates"),
    pytest.param("forget_recovered", id="after the visit updates, before the intents are settled"),
    pytest.param("finish_intent", id="after the earlier intents, before this attempt's intent goes"),
])
def test_a_batch_interrupted_then_written_again_counts_each_event_once(db, monkeypatch, step) -> None:
    entries = batch(record("s1", 0, "/a", new=True), record("s1", 5, "/b"), record("s2", 1, "/c", new=True),
                    record("s1", 7, "/d", custom="signup"))
    with monkeypatch.context() as patch:
        crash_at(patch, step)
        with pytest.raises(Crash):
            write_batch(db, entries)
    write_batch(db, entries)
    write_batch(db, entries)  # and once more, after it finished
    s1, s2 = db.sessions.find_one({"_id": "s1"}), db.sessions.find_one({"_id": "s2"})
    assert (s1["page_views"], s1["events"], s1["entry_path"], s1["exit_path"]) == (2, 1, "/a", "/b")
    assert (s2["page_views"], s2["entry_path"], s2["start_recorded"]) == (1, "/c", True)
    assert db[COUNTING].count_documents({}) == 0, "no intent is left behind"


def test_a_retry_split_into_other_batches_counts_each_event_once(db, monkeypatch) -> None:
    a, b, c = record("s1", 0, "/a", new=True), record("s1", 5, "/b"), record("s1", 9, "/c")
    with monkeypatch.context() as patch:
        crash_at(patch, "_write_groups")
        with pytest.raises(Crash):
            write_batch(db, batch(a, b, c))
    write_batch(db, [("2-0", b)])  # claimed by drains with other batch sizes
    write_batch(db, [("1-0", a), ("3-0", c), ("4-0", record("s1", 12, "/d"))])
    session = db.sessions.find_one({"_id": "s1"})
    assert (session["page_views"], session["entry_path"], session["exit_path"]) == (4, "/a", "/d")
    assert db[COUNTING].count_documents({}) == 0


def test_a_batch_that_crashed_before_its_inserts_leaves_no_trap_for_a_later_resend(db, monkeypatch) -> None:
    view = record("s1", 0, "/a", new=True)
    with monkeypatch.context() as patch:
        crash_at(patch, "_inserts")
        with pytest.raises(Crash):
            write_batch(db, batch(view))
    write_batch(db, batch(view))
    write_batch(db, batch(view))  # the same event sent again later
    assert db.sessions.find_one({"_id": "s1"})["page_views"] == 1
    assert db[COUNTING].count_documents({}) == 0


def test_an_event_id_repeated_in_one_batch_counts_once(db) -> None:
    event_id = str(uuid.uuid4())
    write_batch(db, batch(record("s1", 0, "/a", new=True, event_id=event_id), record("s1", 3, "/a", event_id=event_id)))
    assert db.sessions.find_one({"_id": "s1"})["page_views"] == 1


def test_one_update_per_visit_records_every_hour_and_a_fresh_token(db) -> None:
    write_batch(db, batch(record("s1", 0, "/a", new=True), record("s1", 3600, "/b"), record("s1", 7300, "/c")))
    first = db.sessions.find_one({"_id": "s1"})
    assert first["hours"] == [hour_of(T0 + timedelta(hours=h)) for h in range(3)]
    write_batch(db, batch(record("s1", 7400, "/d")))
    second = db.sessions.find_one({"_id": "s1"})
    assert second["rollup_dirty"] != first["rollup_dirty"]
    assert len(second["count_tokens"]) == 2


def model(views: list[tuple[float, str]]) -> tuple[str, str]:
    """Entry and exit page in plain Python: the first view by time (the earliest arrival among equal
    times), the last by time (the latest arrival among equal times)."""
    entry = min(range(len(views)), key=lambda i: (views[i][0], i))
    exit_ = max(range(len(views)), key=lambda i: (views[i][0], i))
    return views[entry][1], views[exit_][1]


@pytest.mark.parametrize("seed", range(6))
def test_entry_and_exit_follow_time_whatever_the_order_and_the_writer(db, seed: int) -> None:
    rng = random.Random(seed)
    times = [rng.choice([0, 10, 10, 20, 30, 40, 50]) + rng.randrange(1000) / 1000 * (seed % 2) for _ in range(12)]
    views = [(t, f"/p{n}") for n, t in enumerate(times)]
    utm = {n: f"utm_source=s{n}" for n in range(len(views))}
    writers = [SpanCache(), SpanCache()]  # two drains: each one's hint is stale after the other writes
    position = 0
    sent: list[tuple[float, str]] = []
    while position < len(views):
        size = rng.randint(1, 4)
        part = views[position:position + size]
        write_batch(db, batch(*[record("s", t, p, query=utm[int(p[2:])]) for t, p in part]), rng.choice(writers))
        sent += part
        position += size
    session = db.sessions.find_one({"_id": "s"})
    entry, exit_ = model(sent)
    assert (session["entry_path"], session["exit_path"], session["page_views"]) == (entry, exit_, len(views))
    assert session["utm_source"] == f"s{int(entry[2:])}", "UTM fields follow the entry page"
    assert session["first_view_at"] == T0 + timedelta(seconds=min(times))
    assert sorted(session["paths"]) == sorted(p for _, p in views)


def test_a_later_view_arriving_first_for_a_visit_started_by_a_start_alone(db) -> None:
    start = decode_entry({"e": encode_payload(site="web", visitor_id="v-s", at=T0, referrer="", user_agent=UA,
                                              page_view=None), "sid": "s", "new": "1", "vn": ""})
    write_batch(db, batch(start), SpanCache())
    write_batch(db, batch(record("s", 5, "/x")), SpanCache())  # a drain that never saw the start: guesses wrong
    session = db.sessions.find_one({"_id": "s"})
    assert (session["entry_path"], session["exit_path"], session["page_views"]) == ("/x", "/x", 1)


@pytest.mark.parametrize(("intents", "kept", "verdict"), [
    pytest.param(set(), ["b"], True, id="no earlier intent: its attempt finished"),
    pytest.param({"a"}, ["a", "b"], True, id="the visit holds the intent's token: counted"),
    pytest.param({"a"}, ["b"], False, id="the visit lacks the token: count it now"),
    pytest.param({"a"}, None, False, id="the visit is not stored: count it now"),
    pytest.param({"0"}, [str(n) for n in range(1, COUNT_TOKENS_KEPT + 1)], None,
                 id="the visit's list is full and newer: cannot tell"),
])
def test_was_counted(intents, kept, verdict) -> None:
    assert was_counted(intents, kept) is verdict


def test_an_undecidable_retry_is_not_counted_again_and_warns(db, monkeypatch, caplog) -> None:
    view = record("s1", 0, "/a", new=True)
    with monkeypatch.context() as patch:
        crash_at(patch, "forget_recovered")
        with pytest.raises(Crash):
            write_batch(db, batch(view))
    for n in range(COUNT_TOKENS_KEPT):
        write_batch(db, batch(record("s1", n + 1, f"/n{n}")))
    with caplog.at_level(logging.WARNING, logger="footfall.drain"):
        write_batch(db, batch(view))
    assert db.sessions.find_one({"_id": "s1"})["page_views"] == COUNT_TOKENS_KEPT + 1
    assert "cannot tell" in caplog.text


@pytest.mark.parametrize(("known", "modes"), [
    pytest.param(None, ("keep", "set"), id="unknown: in order"),
    pytest.param(ViewSpan(None, None), ("set", "set"), id="no view yet"),
    pytest.param(ViewSpan(T0 + timedelta(seconds=9), T0 + timedelta(seconds=9)), ("set", "keep"),
                 id="the group is inside the stored span's past"),
    pytest.param(ViewSpan(T0, T0 + timedelta(seconds=5)), ("keep", "set"), id="the group is later"),
])
def test_choose_modes(known, modes) -> None:
    group = SessionGroup("s")
    for seconds in (3, 5):
        group.add("1-0", record("s", seconds, "/").page_view, None)
    assert choose_modes(group, known) == modes


def test_another_drains_intent_in_flight_is_left_alone(db) -> None:
    foreign = [str(uuid.uuid4()) for _ in range(300)]
    db[COUNTING].insert_one({"_id": "0000000000000000other", "events": foreign, "at": T0})
    write_batch(db, batch(record("s1", 0, "/a", new=True), record("s1", 5, "/b")))
    assert db.sessions.find_one({"_id": "s1"})["page_views"] == 2
    assert db[COUNTING].find_one({"_id": "0000000000000000other"})["events"] == foreign


def test_a_retry_settles_only_its_own_events_in_an_earlier_intent(db, monkeypatch) -> None:
    a, b = record("s1", 0, "/a", new=True), record("s1", 5, "/b")
    with monkeypatch.context() as patch:
        crash_at(patch, "_write_groups")
        with pytest.raises(Crash):
            write_batch(db, batch(a, b))
    write_batch(db, [("1-0", a)])
    (left,) = db[COUNTING].find()
    assert left["events"] == [b.page_view.event_id], "the other event still waits for its own retry"
    write_batch(db, [("2-0", b)])
    assert db[COUNTING].count_documents({}) == 0
    assert db.sessions.find_one({"_id": "s1"})["page_views"] == 2
