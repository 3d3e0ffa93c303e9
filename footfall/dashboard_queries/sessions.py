"""Raw sessions, page by page, for users who want their data out; and the list of sites.

Sessions are listed oldest first by ``(started_at, _id)`` with keyset pagination: the cursor is the
position of the last session returned, ``base64url(JSON [started_at in ms since the epoch, _id])``,
opaque to clients. The next page is the sessions strictly after that position, so a page never
repeats or skips a session even when several start in the same millisecond, and sessions written
meanwhile before the position do not shift later pages. Read by the index ``site_started_at_id``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from footfall.dashboard_queries.filters import Clause, as_clauses
from footfall.dashboard_queries.pipeline import Query, filter_stages, run, time_match
from footfall.errors import InvalidQuery
from footfall.stores.documents import SESSIONS
from footfall.stores.rollup_build import known_sites

__all__ = ["list_sessions", "sessions_query", "encode_cursor", "decode_cursor", "sites_query", "list_sites",
           "SESSION_FIELDS", "MAX_SESSIONS"]

MAX_SESSIONS = 1000
SESSION_FIELDS = (
    "site", "visitor_id", "visitor_number", "started_at", "last_seen_at", "page_views", "events", "entry_path",
    "exit_path", "referrer", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "country", "city",
    "device", "browser", "os", "user_agent", "paths", "routes", "event_names",
)


def encode_cursor(started_at: datetime, session_id: str) -> str:
    """The opaque cursor for the position just after session ``session_id`` started at ``started_at``."""
    millis = int(started_at.astimezone(UTC).timestamp() * 1000)
    raw = json.dumps([millis, session_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Read a cursor :func:`encode_cursor` made.

    :return: ``(started_at as a UTC datetime, session id)``.
    :raises InvalidQuery: (parameter ``cursor``) anything else.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        millis, session_id = json.loads(raw)
        if not isinstance(millis, int) or isinstance(millis, bool) or not isinstance(session_id, str):
            raise ValueError(cursor)
        return datetime.fromtimestamp(millis / 1000, UTC), session_id
    except (ValueError, TypeError, binascii.Error, OverflowError, OSError):
        raise InvalidQuery("cursor", f"cursor {cursor[:40]!r} is not one this API returned") from None


def sessions_query(start: datetime, end: datetime, site: str | None = None, clauses: Iterable[Clause] = (),
                   limit: int = 100, after: tuple[datetime, str] | None = None) -> Query:
    """The page of sessions (pure): started in ``[start, end)``, matching ``clauses``, after the
    position ``after`` = ``(started_at, _id)``, oldest first, at most ``limit + 1`` (one more tells
    whether a next page exists)."""
    lower = max(start, after[0]) if after else start
    stages = [time_match("started_at", lower, end, site), *filter_stages(tuple(clauses))]
    if after:
        stages.append({"$match": {"$or": [{"started_at": {"$gt": after[0]}}, {"_id": {"$gt": after[1]}}]}})
    stages += [
        {"$sort": {"started_at": 1, "_id": 1}},
        {"$limit": limit + 1},
        {"$project": {"_id": 1, **{name: 1 for name in SESSION_FIELDS}}},
    ]
    return Query(SESSIONS, stages)


def _export(doc: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": doc["_id"]}
    for name in SESSION_FIELDS:
        value = doc.get(name)
        row[name] = value.astimezone(UTC).isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
    started, last = doc.get("started_at"), doc.get("last_seen_at")
    row["duration"] = int((last - started).total_seconds()) if started and last else 0
    return row


def list_sessions(db: Database, start: datetime, end: datetime, site: str | None = None, *,
                  filters: str | Iterable[Clause] | None = None, limit: int = 100,
                  cursor: str | None = None) -> dict[str, Any]:
    """One page of raw sessions (one round trip).

    :param db: the footfall database.
    :param start: inclusive lower bound of ``started_at`` (UTC datetime); :param end: exclusive.
    :param site: one site, or ``None`` for every site. :param filters: the grammar's text or clauses.
    :param limit: sessions per page, 1..1000. :param cursor: ``next_cursor`` of the previous page.
    :return: ``{"sessions": [{"id": str, "site", "visitor_id", "visitor_number", "started_at" (ISO
        UTC), "last_seen_at", "duration" (seconds), "page_views", "events", "entry_path", "exit_path",
        "referrer", "referrer_host", "utm_source", "utm_medium", "utm_campaign", "country", "city",
        "device", "browser", "os", "user_agent", "paths", "routes", "event_names"}, ...],
        "next_cursor": str | None}`` (``None`` on the last page; absent fields are ``None``).
    :raises InvalidQuery: a bad limit, cursor or filters. :raises StoreUnavailable: MongoDB did not answer.
    """
    clauses = as_clauses(filters)
    if not 1 <= limit <= MAX_SESSIONS:
        raise InvalidQuery("limit", f"limit must be between 1 and {MAX_SESSIONS}, got {limit}")
    after = decode_cursor(cursor) if cursor else None
    docs = run(db, sessions_query(start, end, site, clauses, limit, after))
    page, more = docs[:limit], len(docs) > limit
    next_cursor = encode_cursor(page[-1]["started_at"], page[-1]["_id"]) if more else None
    return {"sessions": [_export(doc) for doc in page], "next_cursor": next_cursor}


def sites_query() -> Query:
    """The sites that have sessions, sorted (pure). MongoDB reads the ``site`` prefix of an index
    (a distinct scan where it can)."""
    return Query(SESSIONS, [{"$match": {"site": {"$gte": ""}}}, {"$sort": {"site": 1}}, {"$group": {"_id": "$site"}},
                            {"$sort": {"_id": 1}}])


def list_sites(db: Database) -> list[str]:
    """The names of the sites with data, sorted: the sites the rollups know (built, or with writes
    not built yet: :func:`footfall.stores.rollup_build.known_sites`), read without scanning the
    sessions; :func:`sites_query` (a scan of the ``site`` index, seconds at a million visits on
    SecantusDB) only until a first site is built.

    :raises StoreUnavailable: MongoDB did not answer.
    """
    return known_sites(db)
