"""``footfall.importer`` against a real MongoDB-wire server.

The numbers for the shared logs come from :func:`reference_counts`, a second implementation of issue 2's
rules that shares no code with the importer: it splits lines at ``"``, parses time with ``strptime``,
asks crawlerdetect directly and counts sessions as gaps of at least the TTL between a visitor's sorted
page-view times.
"""

from __future__ import annotations

import gzip
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
from pymongo.database import Database

from footfall.cli import _ImportBars, main, progress_wanted
from footfall.dashboard_queries import summarize
from footfall.geo import Geoip2FastLookup
from footfall.importer import ImportProgress, ImportSummary, import_log, log_size, parse_combined_line
from tests.conftest import SHARED_DATA
from tests.test_geo import city_db  # noqa: F401 - the fixture

LOGS = SHARED_DATA / "access-logs"
SEMICOMPLETE = LOGS / "semicomplete-2015-05.log"
ADVERTOOLS = LOGS / "advertools-2021-11.log"
TTL = 1800  # seconds
ASSETS = {"css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "ico", "svg", "webp", "avif", "bmp",
          "woff", "woff2", "ttf", "otf", "eot"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- the independent reference ---------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    lines: int
    page_views: int
    sessions: int
    visitors: int
    rejected: int
    sessions_by_day: dict[date, int]


def _reference_line(line: str) -> tuple[str, datetime, list[str], str, str] | None:
    """``(ip, ts, request words, status, user agent)`` or ``None``; fields hold no ``"`` in these logs."""
    pieces = line.split('"')
    if len(pieces) != 7 or pieces[4] != " " or pieces[6].strip():
        return None
    head, middle = pieces[0].split(), pieces[2].split()
    if len(head) != 5 or len(middle) != 2 or not (middle[0].isdigit() and len(middle[0]) == 3):
        return None
    if not (middle[1].isdigit() or middle[1] == "-"):
        return None
    try:
        ts = datetime.strptime(f"{head[3]} {head[4]}", "[%d/%b/%Y:%H:%M:%S %z]").astimezone(UTC)
    except ValueError:
        return None
    return head[0], ts, pieces[1].split(" "), middle[0], "" if pieces[5] == "-" else pieces[5]


@cache
def reference_counts(path: Path, include_bots: bool) -> Reference:
    detector = CrawlerDetect()
    lines = path.read_bytes().decode("utf-8", errors="replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    rejected = 0
    views: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for line in lines:
        parsed = _reference_line(line)
        if parsed is None:
            rejected += 1
            continue
        ip, ts, request, status, agent = parsed
        if len(request) != 3 or request[0] != "GET" or not (status.startswith("2") or status == "304"):
            continue
        last_segment = request[1].partition("?")[0].rsplit("/", 1)[-1]
        if "." in last_segment and last_segment.rsplit(".", 1)[1].lower() in ASSETS:
            continue
        if not include_bots and (agent == "" or detector.isCrawler(agent)):
            continue
        views[(ip, agent)].append(ts)
    starts: list[datetime] = []
    for times in views.values():
        times.sort()
        starts.append(times[0])
        gaps = zip(times, times[1:], strict=False)
        starts.extend(later for earlier, later in gaps if later - earlier >= timedelta(seconds=TTL))
    return Reference(
        lines=len(lines), page_views=sum(map(len, views.values())), sessions=len(starts), visitors=len(views),
        rejected=rejected, sessions_by_day=dict(Counter(start.date() for start in starts)),
    )


def stored_counts(db: Database) -> tuple[int, int, int]:
    """``(page views, sessions, visitors)`` as stored."""
    return (db.page_views.count_documents({}), db.sessions.count_documents({}),
            len(db.sessions.distinct("visitor_id")))


def assert_matches_reference(summary: ImportSummary, db: Database, expected: Reference) -> None:
    got = (summary.lines_read, summary.page_views, summary.sessions, summary.visitors, summary.rejected_lines)
    want = (expected.lines, expected.page_views, expected.sessions, expected.visitors, expected.rejected)
    assert got == want
    assert stored_counts(db) == (expected.page_views, expected.sessions, expected.visitors)
    assert summary.lines_read == (summary.page_views + summary.rejected_lines + summary.skipped_bot_lines
                                  + summary.skipped_other_lines)


# --- the shared logs -------------------------------------------------------------------------------

@pytest.mark.parametrize("include_bots", [
    pytest.param(False, id="without bots"),
    pytest.param(True, id="with bots"),
])
def test_semicomplete_log_gives_the_reference_numbers(mongo_db: Database, include_bots: bool) -> None:
    expected = reference_counts(SEMICOMPLETE, include_bots)
    summary = import_log(SEMICOMPLETE, mongo_db, site="semi", session_ttl=TTL, include_bots=include_bots)
    assert_matches_reference(summary, mongo_db, expected)
    assert set(expected.sessions_by_day) == {date(2015, 5, day) for day in range(17, 21)}
    for day, sessions in expected.sessions_by_day.items():
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        within_day = {"$gte": start, "$lt": start + timedelta(days=1)}
        stored = mongo_db.sessions.count_documents({"started_at": within_day})
        assert stored == sessions, day


@pytest.mark.parametrize("include_bots", [
    pytest.param(False, id="without bots"),
    pytest.param(True, id="with bots"),
])
def test_advertools_log_out_of_order_gives_the_reference_numbers(
    mongo_db: Database, include_bots: bool
) -> None:
    expected = reference_counts(ADVERTOOLS, include_bots)
    summary = import_log(ADVERTOOLS, mongo_db, site="advertools", session_ttl=TTL, include_bots=include_bots)
    assert_matches_reference(summary, mongo_db, expected)


def test_importing_twice_leaves_identical_documents(mongo_db: Database) -> None:
    first = import_log(SEMICOMPLETE, mongo_db, site="semicomplete", session_ttl=TTL)
    def stored() -> dict[str, list[dict]]:  # the rollup_dirty token is new with every write, by design
        return {name: list(mongo_db[name].find({}, {"rollup_dirty": 0}).sort("_id"))
                for name in ("sessions", "page_views")}

    before = stored()
    second = import_log(SEMICOMPLETE, mongo_db, site="semicomplete", session_ttl=TTL)
    assert second == first
    assert stored() == before


# --- small hand-written logs -----------------------------------------------------------------------

def log_line(
    at: datetime, path: str = "/", *, ip: str = "203.0.113.7", method: str = "GET", status: int = 200,
    agent: str = BROWSER, referrer: str = "-",
) -> str:
    stamp = at.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} 512 "{referrer}" "{agent or "-"}"'


def write_log(tmp_path: Path, *lines: str, name: str = "access.log") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def sessions_by_start(db: Database) -> list[dict[str, Any]]:
    return list(db.sessions.find({}, {"_id": 0}).sort("started_at"))


@pytest.mark.parametrize(("gap", "sessions"), [
    pytest.param(TTL - 1, 1, id="TTL-1 s continues the session"),
    pytest.param(TTL, 2, id="exactly TTL starts a new session"),
    pytest.param(TTL + 1, 2, id="TTL+1 s starts a new session"),
])
def test_gap_against_ttl(mongo_db: Database, tmp_path: Path, gap: int, sessions: int) -> None:
    path = write_log(tmp_path, log_line(T0, "/a"), log_line(T0 + timedelta(seconds=gap), "/b"))
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.page_views, summary.sessions, summary.visitors) == (2, sessions, 1)
    assert stored_counts(mongo_db) == (2, sessions, 1)


def test_out_of_order_lines_are_taken_in_time_order(mongo_db: Database, tmp_path: Path) -> None:
    minutes = [40, 0, 20, 200, 190]  # one visit 0-40 min, another 190-200 min
    path = write_log(tmp_path, *(log_line(T0 + timedelta(minutes=m), f"/p{m}") for m in minutes))
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.page_views, summary.sessions, summary.visitors) == (5, 2, 1)
    first, second = sessions_by_start(mongo_db)
    assert (first["entry_path"], first["exit_path"], first["page_views"]) == ("/p0", "/p40", 3)
    assert (second["entry_path"], second["exit_path"], second["page_views"]) == ("/p190", "/p200", 2)
    assert first["visitor_id"] == second["visitor_id"]


def test_session_document_fields(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(
        tmp_path,
        log_line(T0, "/landing?utm_source=news", referrer="https://news.example/item"),
        log_line(T0 + timedelta(minutes=5), "/pricing", referrer="https://shop.example/landing"),
        log_line(T0 + timedelta(minutes=9), "/signup"),
    )
    import_log(path, mongo_db, site="shop", session_ttl=TTL)
    (session,) = mongo_db.sessions.find()
    assert len(session.pop("rollup_dirty")) == 24  # a fresh token: the rollups recompute its hours
    assert {key: value for key, value in session.items() if key not in ("_id", "visitor_id")} == {
        "site": "shop", "started_at": T0, "last_seen_at": T0 + timedelta(minutes=9), "page_views": 3,
        "entry_path": "/landing", "exit_path": "/signup", "referrer": "https://news.example/item",
        "user_agent": BROWSER, "first_view_at": T0, "last_view_at": T0 + timedelta(minutes=9),
        "visitor_number": 1,
        "referrer_host": "news.example", "utm_source": "news", "utm_medium": None, "utm_campaign": None,
        "device": "desktop", "browser": "Firefox", "os": "Linux", "country": None, "city": None,
        "paths": ["/landing", "/pricing", "/signup"], "routes": [], "events": 0, "event_names": [],
        "start_recorded": True, "hours": [T0.replace(minute=0, second=0, microsecond=0)],
    }
    views = list(mongo_db.page_views.find().sort("ts"))
    assert [(v["path"], v["query"], v["session_id"]) for v in views] == [
        ("/landing", "utm_source=news", session["_id"]), ("/pricing", "", session["_id"]),
        ("/signup", "", session["_id"]),
    ]
    assert {v["visitor_id"] for v in views} == {session["visitor_id"]}


def test_unparseable_lines_are_counted_not_fatal(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(
        tmp_path,
        log_line(T0, "/a"),
        "this is not an access log line",
        log_line(T0, "/b").rsplit('"', 1)[0],  # truncated User-Agent, as in the semicomplete log
        log_line(T0, "/c").replace("01/Mar/2024", "32/Mar/2024"),
        "",
        log_line(T0 + timedelta(minutes=1), "/d"),
    )
    with path.open("ab") as log:
        log.write(b"\xff\xfe not utf-8 \x80\n")
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.lines_read, summary.rejected_lines, summary.page_views, summary.sessions) == (7, 5, 2, 1)


@pytest.mark.parametrize(("method", "target", "status", "counted"), [
    pytest.param("GET", "/", 200, True, id="GET 200 page"),
    pytest.param("GET", "/article", 304, True, id="304 not modified counts"),
    pytest.param("GET", "/ping", 204, True, id="other 2xx counts"),
    pytest.param("GET", "/page?x=.css", 200, True, id="extension inside the query is not an asset"),
    pytest.param("GET", "/docs/manual.html", 200, True, id="html is a page"),
    pytest.param("GET", "/a.css?x=1", 200, False, id="asset with a query string"),
    pytest.param("GET", "/app.js", 200, False, id="script"),
    pytest.param("GET", "/fonts/x.woff2", 200, False, id="font"),
    pytest.param("GET", "/photos/IMG_0001.JPG", 200, False, id="upper-case extension is an asset"),
    pytest.param("GET", "/missing", 404, False, id="404"),
    pytest.param("GET", "/old", 301, False, id="redirect"),
    pytest.param("GET", "/broken", 500, False, id="server error"),
    pytest.param("POST", "/form", 200, False, id="POST"),
    pytest.param("HEAD", "/", 200, False, id="HEAD"),
])
def test_page_view_rule(
    mongo_db: Database, tmp_path: Path, method: str, target: str, status: int, counted: bool
) -> None:
    path = write_log(tmp_path, log_line(T0, target, method=method, status=status))
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.page_views, summary.skipped_other_lines) == ((1, 0) if counted else (0, 1))
    assert mongo_db.page_views.count_documents({}) == int(counted)


@pytest.mark.parametrize("agent", [
    pytest.param(GOOGLEBOT, id="crawler on the list"),
    pytest.param("", id="no User-Agent"),
])
@pytest.mark.parametrize("include_bots", [
    pytest.param(False, id="skipped"),
    pytest.param(True, id="included with include_bots"),
])
def test_crawlers(mongo_db: Database, tmp_path: Path, agent: str, include_bots: bool) -> None:
    path = write_log(tmp_path, log_line(T0, "/a", agent=agent), log_line(T0, "/b", ip="198.51.100.1"))
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL, include_bots=include_bots)
    assert (summary.page_views, summary.visitors, summary.skipped_bot_lines) == \
        ((2, 2, 0) if include_bots else (1, 1, 1))
    if include_bots:
        assert mongo_db.sessions.count_documents({"user_agent": agent}) == 1


def test_a_visitor_is_the_ip_and_user_agent_pair(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(
        tmp_path,
        log_line(T0), log_line(T0, agent=BROWSER + " Edg/120"), log_line(T0, ip="192.0.2.9"),
        log_line(T0 + timedelta(minutes=1)),
    )
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.page_views, summary.sessions, summary.visitors) == (4, 3, 3)


def test_identical_lines_are_separate_page_views_and_appends_do_not_duplicate(
    mongo_db: Database, tmp_path: Path
) -> None:
    same = log_line(T0, "/a")
    path = write_log(tmp_path, same, same)
    assert import_log(path, mongo_db, site="s", session_ttl=TTL).page_views == 2
    with path.open("a", encoding="utf-8") as log:
        log.write(same + "\n" + log_line(T0 + timedelta(minutes=3), "/b") + "\n")
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL)
    assert (summary.page_views, summary.sessions) == (4, 1)
    assert stored_counts(mongo_db) == (4, 1, 1)
    (session,) = mongo_db.sessions.find()
    assert (session["page_views"], session["exit_path"]) == (4, "/b")


def test_timestamps_are_converted_to_utc(mongo_db: Database, tmp_path: Path) -> None:
    line = '192.0.2.1 - - [01/Mar/2024:08:30:00 -0330] "GET /x HTTP/1.1" 200 5 "-" "' + BROWSER + '"'
    parsed = parse_combined_line(line)
    assert parsed is not None and parsed.ts == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    import_log(write_log(tmp_path, line), mongo_db, site="s", session_ttl=TTL)
    (session,) = mongo_db.sessions.find()
    assert session["started_at"] == datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def test_progress_reports_every_byte_then_every_page_view(mongo_db: Database, tmp_path: Path) -> None:
    assets = (log_line(T0 + timedelta(seconds=i), f"/img/{i}.png") for i in range(9000))  # nothing to write
    path = write_log(tmp_path, *assets, log_line(T0, "/page"))
    reported: list[ImportProgress] = []
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL, progress=reported.append)
    assert (summary.lines_read, summary.page_views) == (9001, 1)
    reading = [event for event in reported if event.phase == "read"]
    assert len(reading) > 1 and {event.total for event in reading} == {log_size(path)}
    assert [event.done for event in reading] == sorted(event.done for event in reading)
    assert (reading[-1].done, reading[-1].lines) == (log_size(path), 9001)
    assert reading[0] == ImportProgress("read", 0, 0, log_size(path)), "a start, for the rate"
    writing = [event for event in reported if event.phase == "write"]
    assert writing == [ImportProgress("write", 9001, 0, 1), ImportProgress("write", 9001, 1, 1)]
    assert reported == reading + writing


@pytest.mark.parametrize(("options", "message"), [
    pytest.param({"log_format": "common"}, "accepted: combined", id="unknown format"),
    pytest.param({"session_ttl": 0}, "positive", id="zero TTL"),
    pytest.param({"run_size": 0}, "positive", id="zero run size"),
    pytest.param({"batch_size": 0}, "positive", id="zero batch size"),
])
def test_bad_options_raise_value_error(
    mongo_db: Database, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {"site": "s", "session_ttl": TTL, **options}
    with pytest.raises(ValueError, match=message):
        import_log(write_log(tmp_path, log_line(T0)), mongo_db, **arguments)


def test_enriched_fields_and_the_country_lookup(mongo_db: Database, tmp_path: Path) -> None:
    iphone = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.5 Mobile/15E148 Safari/604.1")
    path = write_log(
        tmp_path,
        log_line(T0, "/a?utm_medium=social", ip="198.51.100.1", referrer="https://www.shop.example/home"),
        log_line(T0 + timedelta(minutes=1), "/b", ip="198.51.100.1", referrer="https://www.shop.example/a"),
        log_line(T0, "/c", ip="198.51.100.2", agent=iphone, referrer="https://social.example/post"),
    )
    looked_up: list[str] = []

    def country_of(ip: str) -> tuple[str | None, str | None]:
        looked_up.append(ip)
        return {"198.51.100.1": ("NL", "Utrecht")}.get(ip, (None, None))

    import_log(path, mongo_db, site="shop", session_ttl=TTL, host="shop.example", country_of=country_of)
    assert sorted(looked_up) == ["198.51.100.1", "198.51.100.2"], "once per distinct IP"
    desktop = mongo_db.sessions.find_one({"entry_path": "/a"})
    assert (desktop["referrer_host"], desktop["utm_medium"], desktop["country"], desktop["city"]) == (
        None, "social", "NL", "Utrecht"), "a referrer on the site's own host is no referrer host"
    assert (desktop["device"], desktop["browser"], desktop["os"], desktop["paths"]) == (
        "desktop", "Firefox", "Linux", ["/a", "/b"])
    phone = mongo_db.sessions.find_one({"entry_path": "/c"})
    assert (phone["referrer_host"], phone["device"], phone["browser"], phone["os"], phone["country"]) == (
        "social.example", "mobile", "Mobile Safari", "iOS", None)
    views = {v["path"]: v for v in mongo_db.page_views.find()}
    assert (views["/b"]["country"], views["/b"]["device"], views["/b"]["route"]) == ("NL", "desktop", None)
    assert all("198.51.100" not in str(doc) for doc in (*mongo_db.sessions.find(), *views.values())), (
        "the client IP is never stored")


def test_without_a_host_every_referrer_is_external(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(tmp_path, log_line(T0, "/a", referrer="https://www.shop.example/home"))
    import_log(path, mongo_db, site="shop", session_ttl=TTL)
    assert mongo_db.sessions.find_one()["referrer_host"] == "shop.example"


# --- a real site's size (issue 11): sorted runs, batches, gzip, stdin, hosts, countries ---------------

def stored_documents(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every stored document but the rollup_dirty token (new with every write, by design)."""
    return {name: list(db[name].find({}, {"rollup_dirty": 0}).sort("_id"))
            for name in ("sessions", "page_views", "visitors")}


def empty(db: Database) -> None:
    for name in db.list_collection_names():
        db[name].delete_many({})


def test_tiny_runs_and_batches_store_exactly_what_one_sort_does(mongo_db: Database) -> None:
    """The advertools log is out of order: with runs of 7 page views and batches of 5 its lines cross
    every sort and batch boundary; the documents (visitor numbers included) are those of one sort."""
    whole = import_log(ADVERTOOLS, mongo_db, site="adv", session_ttl=TTL, include_bots=True)
    expected = stored_documents(mongo_db)
    empty(mongo_db)
    pieces = import_log(ADVERTOOLS, mongo_db, site="adv", session_ttl=TTL, include_bots=True, run_size=7,
                        batch_size=5)
    assert pieces == whole
    assert stored_documents(mongo_db) == expected
    assert_matches_reference(pieces, mongo_db, reference_counts(ADVERTOOLS, True))


def test_out_of_order_lines_across_run_boundaries(mongo_db: Database, tmp_path: Path) -> None:
    """Each run of 2 holds lines minutes apart; the merged order is the time order."""
    minutes = [200, 40, 190, 0, 20, 10, 30, 220]  # visits: 0-40 (5 views), 190-220 (3 views)
    path = write_log(tmp_path, *(log_line(T0 + timedelta(minutes=m), f"/p{m}") for m in minutes))
    summary = import_log(path, mongo_db, site="s", session_ttl=TTL, run_size=2, batch_size=1)
    assert (summary.page_views, summary.sessions, summary.visitors) == (8, 2, 1)
    first, second = sessions_by_start(mongo_db)
    assert (first["entry_path"], first["exit_path"], first["page_views"]) == ("/p0", "/p40", 5)
    assert first["paths"] == ["/p0", "/p10", "/p20", "/p30", "/p40"]
    assert (second["entry_path"], second["exit_path"], second["page_views"]) == ("/p190", "/p220", 3)
    assert first["hours"] == [T0.replace(minute=0)]
    assert second["hours"] == [(T0 + timedelta(hours=3)).replace(minute=0)]


def test_reimport_with_small_batches_stores_each_document_once(mongo_db: Database) -> None:
    first = import_log(SEMICOMPLETE, mongo_db, site="semi", session_ttl=TTL, run_size=500, batch_size=64)
    before = stored_documents(mongo_db)
    tokens = {doc["_id"]: doc["rollup_dirty"] for doc in mongo_db.sessions.find()}
    second = import_log(SEMICOMPLETE, mongo_db, site="semi", session_ttl=TTL, run_size=300, batch_size=100)
    assert second == first
    assert stored_documents(mongo_db) == before, "same documents, same visitor numbers, rollups not doubled"
    again = {doc["_id"]: doc["rollup_dirty"] for doc in mongo_db.sessions.find()}
    assert again.keys() == tokens.keys() and all(again[key] != tokens[key] for key in tokens), (
        "every session written again carries a fresh rollup_dirty token")
    assert all(doc.get("rollup_dirty") for doc in mongo_db.visitors.find())


def test_visitor_numbers_in_first_seen_order_across_batches(mongo_db: Database, tmp_path: Path) -> None:
    agents = [f"{BROWSER} n{i}" for i in range(6)]
    lines = [log_line(T0 + timedelta(seconds=10 * (5 - i)), agent=agent) for i, agent in enumerate(agents)]
    path = write_log(tmp_path, *lines)
    import_log(path, mongo_db, site="s", session_ttl=TTL, batch_size=1)
    numbered = {doc["user_agent"]: doc["visitor_number"] for doc in mongo_db.sessions.find()}
    assert [numbered[agent] for agent in reversed(agents)] == [1, 2, 3, 4, 5, 6]
    assert {doc["visitor_number"] for doc in mongo_db.visitors.find()} == {1, 2, 3, 4, 5, 6}


def test_gzip_log_imports_as_the_plain_one(mongo_db: Database, tmp_path: Path) -> None:
    plain = import_log(ADVERTOOLS, mongo_db, site="adv", session_ttl=TTL)
    expected = stored_documents(mongo_db)
    empty(mongo_db)
    packed = tmp_path / "adver.tools.access.log.1"  # no .gz: recognised by its magic bytes
    packed.write_bytes(gzip.compress(ADVERTOOLS.read_bytes()))
    assert import_log(packed, mongo_db, site="adv", session_ttl=TTL) == plain
    assert stored_documents(mongo_db) == expected


def test_standard_input(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(tmp_path, log_line(T0, "/a"), log_line(T0 + timedelta(minutes=1), "/b"))
    reported: list[ImportProgress] = []
    summary = import_log("-", mongo_db, site="s", session_ttl=TTL, stdin=io.BytesIO(path.read_bytes()),
                         progress=reported.append)
    assert (summary.lines_read, summary.page_views, summary.sessions) == (2, 2, 1)
    assert {event.total for event in reported if event.phase == "read"} == {None}, "no size, so no ETA"
    assert log_size("-") is None


def test_referrers_on_any_of_the_hosts_are_same_site(mongo_db: Database, tmp_path: Path) -> None:
    referrers = {"/a": "https://www.example.com/x", "/b": "https://blog.example.com/y",
                 "/c": "https://example.org/z", "/d": "-"}
    path = write_log(tmp_path, *(log_line(T0, path, ip=f"192.0.2.{i}", referrer=referrer)
                                 for i, (path, referrer) in enumerate(referrers.items())))
    import_log(path, mongo_db, site="s", session_ttl=TTL, host=["example.com", "blog.example.com"])
    found = {doc["entry_path"]: doc["referrer_host"] for doc in mongo_db.sessions.find()}
    assert found == {"/a": None, "/b": None, "/c": "example.org", "/d": None}


def test_countries_by_default_as_live_traffic_gets_them(mongo_db: Database, tmp_path: Path) -> None:
    """No ``country_of``: the middleware's own lookup (geoip2fast's bundled data) for each client IP."""
    path = write_log(tmp_path, log_line(T0, "/uk", ip="81.2.69.160"), log_line(T0, "/us", ip="8.8.8.8"),
                     log_line(T0, "/private", ip="10.0.0.1"))
    import_log(path, mongo_db, site="s", session_ttl=TTL)
    live = Geoip2FastLookup()
    sessions = {doc["entry_path"]: (doc["country"], doc["city"]) for doc in mongo_db.sessions.find()}
    assert sessions == {"/uk": ("GB", None), "/us": ("US", None), "/private": (None, None)}
    assert sessions["/uk"][0] == live.locate("81.2.69.160").country_code
    views = {doc["path"]: doc["country"] for doc in mongo_db.page_views.find()}
    assert views == {"/uk": "GB", "/us": "US", "/private": None}
    for ip in ("81.2.69.160", "8.8.8.8", "10.0.0.1"):
        assert all(ip not in str(doc) for doc in (*mongo_db.sessions.find(), *mongo_db.page_views.find()))


def test_cities_from_a_maxmind_database(mongo_db: Database, tmp_path: Path, city_db: str) -> None:  # noqa: F811
    path = write_log(tmp_path, log_line(T0, "/london", ip="81.2.69.7"))
    import_log(path, mongo_db, site="s", session_ttl=TTL, geoip_db=city_db)
    (session,) = mongo_db.sessions.find()
    assert (session["country"], session["city"]) == ("GB", "London")


# --- the command ---------------------------------------------------------------------------------------

@pytest.fixture
def cli_env(mongodb_uri: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTFALL_REDIS_URL", redis_url)
    monkeypatch.setenv("FOOTFALL_MONGODB_URI", mongodb_uri)
    monkeypatch.delenv("FOOTFALL_GEOIP_DB", raising=False)


def test_command_without_a_terminal_prints_the_summary_and_no_progress(
    mongo_db: Database, tmp_path: Path, cli_env: None
) -> None:
    path = write_log(tmp_path, log_line(T0, "/a", referrer="https://www.example.com/"),
                     log_line(T0, "/b", ip="192.0.2.2", referrer="https://shop.example.com/"))
    result = CliRunner().invoke(main, ["import-log", str(path), "--site", "s", "--host", "example.com",
                                       "--host", "shop.example.com"])
    assert result.exit_code == 0, result.output
    assert "reading" not in result.output and "writing" not in result.output
    assert result.output.splitlines()[:3] == [f"{'lines read':<20} {2:>10}", f"{'page views':<20} {2:>10}",
                                              f"{'sessions':<20} {2:>10}"]
    assert [doc["referrer_host"] for doc in mongo_db.sessions.find()] == [None, None]


def test_command_reads_standard_input(mongo_db: Database, tmp_path: Path, cli_env: None) -> None:
    data = gzip.compress(write_log(tmp_path, log_line(T0, "/a")).read_bytes())
    result = CliRunner().invoke(main, ["import-log", "-", "--site", "s", "--quiet"], input=data)
    assert result.exit_code == 0, result.output
    assert f"{'page views':<20} {1:>10}" in result.output
    assert mongo_db.page_views.count_documents({}) == 1
    # the rollups of the imported hours are built before the command returns: the dashboard reads them
    assert f"{'rollup hours built':<20} {1:>10}" in result.output
    day = datetime.combine(T0.date(), datetime.min.time(), tzinfo=UTC)
    found = summarize(mongo_db, day, day + timedelta(days=1), "s")
    assert (found["source"], found["page_views"], found["total_visits"]) == ("rollups", 1, 1)


@pytest.mark.parametrize(("quiet", "tty", "wanted"), [
    pytest.param(False, True, True, id="a terminal gets bars"),
    pytest.param(True, True, False, id="--quiet turns them off"),
    pytest.param(False, False, False, id="no terminal, no bars"),
])
def test_progress_only_on_a_terminal(quiet: bool, tty: bool, wanted: bool) -> None:
    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    assert progress_wanted(quiet, Stream()) is wanted


def test_progress_bars_draw_lines_and_rate(mongo_db: Database, tmp_path: Path) -> None:
    path = write_log(tmp_path, *(log_line(T0 + timedelta(seconds=i), f"/p{i}") for i in range(5000)))
    bars = _ImportBars()
    import_log(path, mongo_db, site="s", session_ttl=TTL, progress=bars)
    bars.close()  # drawn to sys.stderr, which is not a terminal here: click draws nothing, without error


@pytest.mark.parametrize(("agent", "parsed"), [
    pytest.param('Mozilla \\"quoted\\" 5.0', 'Mozilla \\"quoted\\" 5.0', id="Apache's escaped quote"),
    pytest.param("Mozilla \\x22nginx\\x22", "Mozilla \\x22nginx\\x22", id="nginx's escaped quote"),
    pytest.param("ends in a backslash \\\\", "ends in a backslash \\\\", id="escaped backslash"),
    pytest.param('bare " quote', "bare ", id="an unescaped quote ends the field; the rest is a trailing field"),
    pytest.param("trailing backslash \\", None, id="a lone backslash escapes the closing quote"),
])
def test_quoted_fields(agent: str, parsed: str | None) -> None:
    line = parse_combined_line(f'192.0.2.1 - - [01/Mar/2024:08:30:00 +0000] "GET / HTTP/1.1" 200 5 "-" "{agent}"')
    assert (line.user_agent if line else None) == parsed
