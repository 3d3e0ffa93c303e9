"""Hand-built documents of the data contract (docs/data-model.md) and a plain-Python reference.

:func:`make_dataset` builds sessions, page views, custom events and visitors that
agree with one another (a session's counts, paths, entry and exit pages come from its own views and
events), around both of Europe/Berlin's DST changes of 2025. The ``reference_*`` functions compute
every definition by plain Python over the same documents, independently of the pipelines: the
tests compare the two.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from footfall.dashboard_queries.filters import DIMENSIONS, Clause, parse_filters

PATHS = ["/", "/pricing", "/docs", "/blog/a", "/blog/b", "/users/7"]
ROUTES = {"/": "/", "/pricing": "/pricing", "/docs": "/docs", "/blog/a": "/blog/<slug>", "/blog/b": "/blog/<slug>",
          "/users/7": None}
HOSTS = [None, None, "google.com", "news.ycombinator.com", "duckduckgo.com"]
UTM = [None, None, None, "newsletter", "twitter"]
COUNTRIES = ["DE", "DE", "US", "FR", None]
DEVICES = ["desktop", "mobile", "tablet", None]
BROWSERS = ["Chrome", "Firefox", "Mobile Safari", None]
SYSTEMS = ["Windows", "iOS", "Linux", None]
EVENTS = ["signup", "download", "play | pause"]
WINDOWS = [(datetime(2025, 3, 27, tzinfo=UTC), 8), (datetime(2025, 10, 24, tzinfo=UTC), 5)]  # start, days


@dataclass
class Dataset:
    sessions: list[dict[str, Any]] = field(default_factory=list)
    page_views: list[dict[str, Any]] = field(default_factory=list)
    custom_events: list[dict[str, Any]] = field(default_factory=list)
    visitors: list[dict[str, Any]] = field(default_factory=list)

    def insert(self, db: Any) -> None:
        for name, docs in (("sessions", self.sessions), ("page_views", self.page_views),
                           ("custom_events", self.custom_events), ("visitors", self.visitors)):
            if docs:
                db[name].insert_many([dict(doc) for doc in docs])


def _session(rng: random.Random, sid: str, site: str, visitor: str, started: datetime, data: Dataset) -> None:
    views = [started + timedelta(seconds=s) for s in sorted(rng.sample(range(0, 1500), rng.choice([0, 1, 1, 1, 2,
                                                                                                    3, 4])))]
    paths = [rng.choice(PATHS) for _ in views]
    n_events = rng.choice([0, 0, 0, 1, 2])
    event_times = [started + timedelta(seconds=rng.randrange(0, 1500)) for _ in range(n_events)]
    names = [rng.choice(EVENTS) for _ in event_times]
    for k, (ts, path) in enumerate(zip(views, paths, strict=True)):
        data.page_views.append({"_id": f"{sid}-v{k}", "site": site, "session_id": sid, "visitor_id": visitor,
                                "visitor_number": None, "ts": ts, "path": path, "query": "", "referrer": "",
                                "title": path, "route": ROUTES[path], "device": None, "browser": None, "os": None,
                                "country": None})
    for k, (ts, name) in enumerate(zip(event_times, names, strict=True)):
        data.custom_events.append({"_id": f"{sid}-e{k}", "site": site, "session_id": sid, "visitor_id": visitor,
                                   "visitor_number": None, "ts": ts, "name": name, "props": {},
                                   "path": paths[0] if paths else "/", "route": None})
    utm = rng.choice(UTM)
    doc = {
        "_id": sid, "site": site, "visitor_id": visitor, "visitor_number": None, "started_at": started,
        "last_seen_at": max([started, *views, *event_times]), "page_views": len(views),
        "entry_path": paths[0] if paths else None, "exit_path": paths[-1] if paths else None,
        "first_view_at": views[0] if views else None, "last_view_at": views[-1] if views else None,
        "event_ids": [f"{sid}-v{k}" for k in range(len(views))], "referrer": "", "user_agent": "test",
        "referrer_host": rng.choice(HOSTS), "utm_source": utm, "utm_medium": "email" if utm == "newsletter" else None,
        "utm_campaign": "spring" if utm else None, "country": rng.choice(COUNTRIES), "city": None,
        "device": rng.choice(DEVICES), "browser": rng.choice(BROWSERS), "os": rng.choice(SYSTEMS),
        "paths": sorted(set(paths)), "routes": sorted({ROUTES[p] for p in paths if ROUTES[p] is not None}),
        "events": n_events, "event_names": sorted(set(names)),
    }
    data.sessions.append(doc)


def make_dataset(seed: int = 6, per_window: int = 45) -> Dataset:
    """About 90 sessions on sites ``web`` and ``blog`` in two windows around Berlin's DST changes."""
    rng = random.Random(seed)
    data = Dataset()
    n = 0
    for window_start, days in WINDOWS:
        for _ in range(per_window):
            site = rng.choice(["web", "web", "web", "blog"])
            visitor = f"v{rng.randrange(18)}"
            started = window_start + timedelta(seconds=rng.randrange(days * 86400))
            _session(rng, f"s{n:03d}", site, visitor, started, data)
            n += 1
    first_seen: dict[tuple[str, str], datetime] = {}
    for s in data.sessions:
        key = (s["site"], s["visitor_id"])
        first_seen[key] = min(first_seen.get(key, s["started_at"]), s["started_at"])
    for (site, visitor), seen in sorted(first_seen.items()):
        if visitor in ("v1", "v2", "v3"):  # known from long before the data
            seen = datetime(2024, 12, 1, tzinfo=UTC)
        data.visitors.append({"_id": f"{site}|{visitor}", "site": site, "visitor_id": visitor, "visitor_number": None,
                              "first_seen_at": seen, "last_seen_at": seen})
    return data


# ---- reference: the definitions in plain Python ---------------------------------------------------

def _values(session: dict[str, Any], dimension: str) -> list[Any]:
    if dimension == "source":
        return [session.get("utm_source") or session.get("referrer_host")]
    value = session.get(DIMENSIONS[dimension].session_field)
    return list(value) if isinstance(value, list) else [value]


def _clause_holds(values: list[Any], clause: Clause) -> bool:
    if clause.op == "~":
        return any(v is not None and sub.lower() in v.lower() for v in values for sub in clause.values)  # type: ignore[union-attr]
    hit = any(v in clause.values for v in values)
    return hit if clause.op == "==" else not hit


def visit_predicate(filters: str | None) -> Callable[[dict[str, Any]], bool]:
    clauses = parse_filters(filters)
    return lambda s: all(_clause_holds(_values(s, c.dimension), c) for c in clauses)


def view_predicate(filters: str | None) -> Callable[[dict[str, Any]], bool]:
    clauses = [c for c in parse_filters(filters) if c.dimension in ("page", "route")]
    return lambda v: all(_clause_holds([v.get("path" if c.dimension == "page" else "route")], c) for c in clauses)


def _in(site: str | None, start: datetime, end: datetime, doc: dict[str, Any], field: str) -> bool:
    return (site is None or doc["site"] == site) and start <= doc[field] < end


def selected(data: Dataset, start: datetime, end: datetime, site: str | None = None,
             filters: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The visits and page views the definitions count for this range, site and filter."""
    holds, view_holds = visit_predicate(filters), view_predicate(filters)
    by_id = {s["_id"]: s for s in data.sessions}
    visits = [s for s in data.sessions if _in(site, start, end, s, "started_at") and holds(s)]
    views = [v for v in data.page_views
             if _in(site, start, end, v, "ts") and view_holds(v) and holds(by_id[v["session_id"]])]
    return visits, views


def metrics_of(visits: list[dict[str, Any]], page_views: int) -> dict[str, Any]:
    n = len(visits)
    bounces = [s for s in visits if s["page_views"] == 1 and s.get("events", 0) == 0]
    duration = sum(0 if s in bounces else (s["last_seen_at"] - s["started_at"]).total_seconds() for s in visits)
    return {
        "total_visits": n,
        "unique_visitors": len({s["visitor_id"] for s in visits}),
        "page_views": page_views,
        "views_per_visit": round(page_views / n, 2) if n else 0,
        "bounce_rate": round(len(bounces) / n, 4) if n else 0,
        "visit_duration": round(duration / n) if n else 0,
    }


def reference_summary(data: Dataset, start: datetime, end: datetime, site: str | None = None,
                      filters: str | None = None) -> dict[str, Any]:
    visits, views = selected(data, start, end, site, filters)
    seen = {v["_id"]: v["first_seen_at"] for v in data.visitors}
    new = [s for s in visits if seen[f"{s['site']}|{s['visitor_id']}"] >= start]
    return {**metrics_of(visits, len(views)), "new_visits": len(new), "returning_visits": len(visits) - len(new)}


def reference_breakdown(data: Dataset, start: datetime, end: datetime, dimension: str, site: str | None = None,
                        filters: str | None = None) -> list[dict[str, Any]]:
    """Every row, sorted as the API sorts them."""
    visits, views = selected(data, start, end, site, filters)
    own = [c for c in parse_filters(filters) if c.dimension == dimension]
    by_id = {s["_id"]: s for s in data.sessions}
    label = lambda v: DIMENSIONS[dimension].none_label if v is None else v  # noqa: E731
    keep = lambda v: all(_clause_holds([v], c) for c in own)  # noqa: E731
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for s in visits:
        for value in set(_values(s, dimension)) if DIMENSIONS[dimension].page_level else _values(s, dimension):
            if keep(value):
                groups[value].append(s)
    view_counts: dict[Any, int] = defaultdict(int)
    for v in views:
        if dimension in ("page", "route"):
            view_counts[v["path" if dimension == "page" else "route"]] += 1
        else:
            for value in set(_values(by_id[v["session_id"]], dimension)):
                if keep(value):
                    view_counts[value] += 1
    rows = []
    for value in set(groups) | set(view_counts):
        row = {"value": label(value), **metrics_of(groups.get(value, []), view_counts.get(value, 0))}
        del row["views_per_visit"]
        if dimension == "event":
            holds = visit_predicate(filters)
            row["events"] = sum(1 for e in data.custom_events if e["name"] == value and _in(site, start, end, e, "ts")
                                and all(_clause_holds([e["name"]], c) for c in own)
                                and holds(by_id[e["session_id"]]))
        rows.append((value, row))
    primary = ("page_views", "unique_visitors") if dimension == "page" else ("unique_visitors", "page_views")
    rows.sort(key=lambda item: (-item[1][primary[0]], -item[1][primary[1]], item[0] is not None, item[0] or ""))
    return [row for _, row in rows]


def local_midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)

