"""MongoDB documents and write operations for footfall's records: pure builders, no I/O.

Collections (issue 2's storage section):

- ``sessions``: one document per visit, ``_id`` = session id, with ``site``, ``visitor_id``,
  ``started_at``, ``last_seen_at`` (UTC), ``page_views``, ``entry_path``, ``exit_path``, ``referrer``,
  ``user_agent``; plus ``first_view_at`` / ``last_view_at``, the times of the entry and exit page
  views, which let events arriving out of order still pick the right entry and exit page.
- ``page_views``: ``_id`` = event id (the unique index that stores a retried event once), ``site``,
  ``session_id``, ``visitor_id``, ``ts``, ``path``, ``query``, ``referrer``, ``title``.

The session updates are aggregation-pipeline updates (MongoDB ≥ 4.2) so that they merge: a session
document can be created by its start or by its first page view, in either order, with the same result.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from footfall.events import PageView, SessionStart

__all__ = [
    "SESSIONS",
    "PAGE_VIEWS",
    "INDEXES",
    "session_start_update",
    "page_view_document",
    "page_view_session_update",
]

SESSIONS = "sessions"
PAGE_VIEWS = "page_views"

INDEXES: dict[str, list[IndexModel]] = {
    SESSIONS: [
        IndexModel([("site", ASCENDING), ("started_at", ASCENDING)], name="site_started_at"),
        IndexModel([("started_at", ASCENDING)], name="started_at"),
        IndexModel([("site", ASCENDING), ("visitor_id", ASCENDING), ("started_at", DESCENDING)],
                   name="site_visitor_started_at"),
    ],
    PAGE_VIEWS: [
        IndexModel([("site", ASCENDING), ("ts", ASCENDING)], name="site_ts"),
        IndexModel([("ts", ASCENDING)], name="ts"),
        IndexModel([("session_id", ASCENDING), ("ts", ASCENDING)], name="session_ts"),
    ],
}


def _session_fields(
    site: str, visitor_id: str, at: Any, referrer: str, user_agent: str, page_views: int
) -> dict[str, Any]:
    return {
        "site": {"$ifNull": ["$site", {"$literal": site}]},
        "visitor_id": {"$ifNull": ["$visitor_id", {"$literal": visitor_id}]},
        "started_at": {"$min": ["$started_at", at]},
        "last_seen_at": {"$max": ["$last_seen_at", at]},
        "referrer": {"$ifNull": ["$referrer", {"$literal": referrer}]},
        "user_agent": {"$ifNull": ["$user_agent", {"$literal": user_agent}]},
        "page_views": {"$add": [{"$ifNull": ["$page_views", 0]}, page_views]},
    }


def session_start_update(start: SessionStart) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``(filter, pipeline)`` upsert that records a visit's start.

    Idempotent: running it twice leaves the same document (``started_at`` is a minimum, the other
    fields keep their first value, ``page_views`` is added 0).
    """
    fields = _session_fields(
        start.site, start.visitor_id, start.started_at, start.referrer, start.user_agent, 0
    )
    return {"_id": start.session_id}, [{"$set": fields}]


def page_view_document(view: PageView) -> dict[str, Any]:
    """The ``page_views`` document for ``view`` (``_id`` = its event id)."""
    return {
        "_id": view.event_id,
        "site": view.site,
        "session_id": view.session_id,
        "visitor_id": view.visitor_id,
        "ts": view.ts,
        "path": view.path,
        "query": view.query,
        "referrer": view.referrer,
        "title": view.title,
    }


def page_view_session_update(view: PageView) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``(filter, pipeline)`` upsert that counts ``view`` into its session.

    Not idempotent (it adds one page view): apply it only after the page view's own insert
    succeeded, so a retried event (duplicate ``_id``) is counted once. Entry and exit page follow
    the earliest and latest view by time, whatever order the views arrive in; a view with the
    same time as the current exit page becomes the exit page (the later-arriving one wins a tie).
    """
    fields = _session_fields(view.site, view.visitor_id, view.ts, view.referrer, view.user_agent, 1)
    is_first = {"$or": [{"$eq": [{"$type": "$first_view_at"}, "missing"]}, {"$lt": [view.ts, "$first_view_at"]}]}
    is_last = {"$or": [{"$eq": [{"$type": "$last_view_at"}, "missing"]}, {"$gte": [view.ts, "$last_view_at"]}]}
    fields.update(
        {
            "entry_path": {"$cond": [is_first, {"$literal": view.path}, "$entry_path"]},
            "first_view_at": {"$cond": [is_first, view.ts, "$first_view_at"]},
            "exit_path": {"$cond": [is_last, {"$literal": view.path}, "$exit_path"]},
            "last_view_at": {"$cond": [is_last, view.ts, "$last_view_at"]},
        }
    )
    return {"_id": view.session_id}, [{"$set": fields}]
