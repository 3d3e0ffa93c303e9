"""Replaying a slice of a real access log as register traffic: the live counters equal what an
independent MongoDB aggregation of the drained records says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from footfall.importer import is_page_view, parse_combined_line
from footfall.stores.redis_sessions import session_key
from tests.live.support import AUTH

LOG = Path(__file__).resolve().parents[1] / "data" / "access-logs" / "semicomplete-2015-05.log"
LINES = 600  # page-view lines replayed (crawlers among them count nowhere): small enough for the test server
ZONE = "Australia/Sydney"  # UTC+10 in May: its midnight falls inside the slice (10:05-20:05 UTC)
SESSION_TTL = 1800  # seconds
WINDOW = 300  # seconds


def log_slice() -> list[Any]:
    lines = [line for text in LOG.read_text(encoding="utf-8", errors="replace").splitlines()
             if (line := parse_combined_line(text)) is not None and is_page_view(line)]
    return sorted(lines, key=lambda line: line.ts)[:LINES]


def mongodb_truth(db: Any, now: datetime) -> dict[str, Any]:
    """The same numbers, by one aggregation over the drained records (docs/data-model.md)."""
    zone = ZoneInfo(ZONE)
    day = now.astimezone(zone).date()
    start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    end = start + timedelta(days=1)
    [facet] = db.sessions.aggregate([
        {"$match": {"site": "default"}},
        {"$facet": {
            "visits": [{"$count": "n"}],
            "visitors": [{"$group": {"_id": "$visitor_id"}}, {"$count": "n"}],
            "today": [{"$match": {"started_at": {"$gte": start, "$lt": end}}},
                      {"$group": {"_id": "$visitor_id", "visits": {"$sum": 1}}}],
            "active": [{"$match": {"last_seen_at": {"$gt": now - timedelta(seconds=WINDOW)}}}, {"$count": "n"}],
        }},
    ])

    def n(name: str) -> int:
        return facet[name][0]["n"] if facet[name] else 0

    return {"totalVisits": n("visits"), "uniqueVisitors": n("visitors"),
            "todayVisits": sum(row["visits"] for row in facet["today"]), "todayUniqueVisitors": len(facet["today"]),
            "activeUsers": n("active"), "pageViews": db.page_views.count_documents({"site": "default"})}


def test_counters_equal_mongodb_after_replaying_a_log_through_register(make_app, clock, redis_client, drain,
                                                                     mongo_db) -> None:
    app = make_app(public_stats=True, timezone=ZONE, session_ttl=SESSION_TTL, active_window=WINDOW)
    jars: dict[tuple[str, str], Any] = {}
    last_seen: dict[tuple[str, str], datetime] = {}
    answered = 0
    for line in log_slice():
        who = (line.client_ip, line.user_agent)
        jar = jars.setdefault(who, app.test_client())
        if who in last_seen and line.ts - last_seen[who] >= timedelta(seconds=SESSION_TTL):
            session = jar.get_cookie("session")  # the log's gap is longer than the TTL: Redis lets it expire
            if session is not None:
                redis_client.delete(session_key(session.value.rsplit(".", 1)[0]))
        last_seen[who] = line.ts
        clock.now = line.ts
        response = jar.post("/api/visitor/register", json={
            "visitorId": line.client_ip, "timestamp": int(line.ts.timestamp() * 1000),
            "userAgent": line.user_agent or "-", "referrer": line.referrer or "direct",
        }, headers={"User-Agent": line.user_agent, "Referer": "http://semicomplete.com" + line.target})
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        if body["success"]:
            assert body["stats"]["totalVisits"] >= answered, "the counter never goes back"
            answered = body["stats"]["totalVisits"]
    drain()
    live = app.test_client().get("/api/stats", headers=AUTH).get_json()
    truth = mongodb_truth(mongo_db, clock.now)
    assert {key: live[key] for key in truth} == truth, truth
    assert truth["totalVisits"] > truth["uniqueVisitors"] > 20, "the slice has returning visitors and many visitors"
    assert truth["pageViews"] > truth["totalVisits"]
    assert 0 < truth["todayVisits"] < truth["totalVisits"], "the slice crosses midnight in the zone"
