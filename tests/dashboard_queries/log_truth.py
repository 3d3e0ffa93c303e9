"""Figures of an access log computed in plain Python, independently of footfall's pipelines.

The dashboard tests import the log with ``footfall import-log``'s function, then compare what the
aggregation pipelines answer with what this module counts straight from the file: its own line
parser, its own sessionization (a visit ends after ``SESSION_TTL`` seconds without a page view),
and the README's definitions written out as loops. Only the crawler list is shared (the maintained
library both sides must use).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from footfall.middleware.bots import is_crawler

SESSION_TTL = 1800  # seconds
ASSETS = (".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp",
          ".avif", ".bmp", ".woff", ".woff2", ".ttf", ".otf", ".eot")
_LINE = re.compile(r'^(\S+) \S+ \S+ \[([^\]]+)\] "([^"]*)" (\d{3}) \S+ "([^"]*)" "([^"]*)"')


@dataclass
class Visit:
    visitor: tuple[str, str]
    started_at: datetime
    last_seen_at: datetime
    referrer: str
    entry: str
    query: str
    paths: list[str] = field(default_factory=list)


@dataclass
class LogTruth:
    """Every visit and page view of the log, after the page-view and crawler rules."""

    visits: list[Visit]
    views: list[tuple[datetime, str, tuple[str, str]]]  # (ts, path, visitor)
    first_seen: dict[tuple[str, str], datetime]

    def summary(self, start: datetime, end: datetime) -> dict[str, float | int]:
        """The summary figures of ``[start, end)`` by the README's definitions."""
        visits = [v for v in self.visits if start <= v.started_at < end]
        page_views = sum(1 for ts, _, _ in self.views if start <= ts < end)
        bounces = [v for v in visits if len(v.paths) == 1]
        durations = [0.0 if len(v.paths) == 1 else (v.last_seen_at - v.started_at).total_seconds() for v in visits]
        new = sum(1 for v in visits if self.first_seen[v.visitor] >= start)
        n = len(visits)
        return {
            "total_visits": n,
            "unique_visitors": len({v.visitor for v in visits}),
            "page_views": page_views,
            "views_per_visit": page_views / n if n else 0,
            "bounce_rate": len(bounces) / n if n else 0,
            "visit_duration": sum(durations) / n if n else 0,
            "new_visits": new,
            "returning_visits": n - new,
        }

    def top_pages(self, start: datetime, end: datetime, limit: int = 10) -> list[tuple[str, int]]:
        """``(path, page views)`` of the ``limit`` most viewed pages (ties by path)."""
        counts = Counter(path for ts, path, _ in self.views if start <= ts < end)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def page_visitors(self, start: datetime, end: datetime) -> dict[str, int]:
        """Unique visitors per page (distinct visitors with a view of it in the range)."""
        seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for ts, path, visitor in self.views:
            if start <= ts < end:
                seen[path].add(visitor)
        return {path: len(visitors) for path, visitors in seen.items()}

    def referrers(self, start: datetime, end: datetime, own_host: str) -> dict[str, tuple[int, int]]:
        """``{referrer host or "Direct / None": (visits, unique visitors)}`` over visits in range."""
        visits: Counter[str] = Counter()
        visitors: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for v in self.visits:
            if start <= v.started_at < end:
                host = _host(v.referrer)
                key = "Direct / None" if host is None or host == _bare(own_host) else host
                visits[key] += 1
                visitors[key].add(v.visitor)
        return {key: (visits[key], len(visitors[key])) for key in visits}

    def utm_sources(self, start: datetime, end: datetime) -> Counter[str]:
        """Visits per ``utm_source`` of their entry page."""
        found: Counter[str] = Counter()
        for v in self.visits:
            if start <= v.started_at < end:
                source = (parse_qs(v.query).get("utm_source") or [""])[0].strip()
                found[source or "(none)"] += 1
        return found


def _bare(host: str) -> str:
    host = host.lower()
    return host[4:] if host.startswith("www.") else host


def _host(referrer: str) -> str | None:
    if not referrer or referrer == "-":
        return None
    try:
        host = urlsplit(referrer).hostname
    except ValueError:
        return None
    return _bare(host) if host else None


def read_log(path: Path) -> LogTruth:
    """Parse and sessionize the log (visitor = client IP and User-Agent, as import-log does)."""
    hits = []
    for order, raw in enumerate(path.read_bytes().split(b"\n")):
        match = _LINE.match(raw.decode("utf-8", errors="replace"))
        if match is None:
            continue
        ip, stamp, request, status, referrer, agent = match.groups()
        parts = request.split(" ")
        if len(parts) not in (2, 3) or parts[0] != "GET":
            continue
        code = int(status)
        if not (200 <= code <= 299 or code == 304):
            continue
        target = parts[1]
        path_only, _, query = target.partition("?")
        if path_only.lower().endswith(ASSETS):
            continue
        if agent in ("", "-") or is_crawler(agent):
            continue
        ts = datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
        hits.append((ts, order, (ip, agent), path_only, query, "" if referrer == "-" else referrer))
    hits.sort(key=lambda h: (h[0], h[1]))
    open_visits: dict[tuple[str, str], Visit] = {}
    visits: list[Visit] = []
    views = []
    first_seen: dict[tuple[str, str], datetime] = {}
    for ts, _, visitor, path_only, query, referrer in hits:
        first_seen.setdefault(visitor, ts)
        visit = open_visits.get(visitor)
        if visit is None or ts - visit.last_seen_at >= timedelta(seconds=SESSION_TTL):
            visit = Visit(visitor, ts, ts, referrer, path_only, query)
            open_visits[visitor] = visit
            visits.append(visit)
        visit.last_seen_at = ts
        visit.paths.append(path_only)
        views.append((ts, path_only, visitor))
    return LogTruth(visits, views, first_seen)
