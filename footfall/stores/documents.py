"""MongoDB documents and write operations for footfall's records: pure builders, no I/O.

Collections (issue 2's storage section):

- ``sessions``: one document per visit, ``_id`` = session id, with ``site``, ``visitor_id``,
  ``started_at``, ``last_seen_at`` (UTC), ``page_views``, ``entry_path``, ``exit_path``, ``referrer``,
  ``user_agent``; plus ``first_view_at`` / ``last_view_at``, the times of the entry and exit page
  views, which let events arriving out of order still pick the right entry and exit page, and
  ``event_ids``, the page views already counted (so a retry is not counted again).
- ``page_views``: ``_id`` = event id (the unique index that stores a retried event once), ``site``,
  ``session_id``, ``visitor_id``, ``ts``, ``path``, ``query``, ``referrer``, ``title``,
  ``visitor_number``.
- ``visitors``: one document per visitor per site, ``_id`` = ``"<site>|<visitor id>"``, ``site``,
  ``visitor_id``, ``visitor_number``, ``first_seen_at``, ``last_seen_at``.

Sessions carry ``visitor_number`` too (``null`` when the visitor has none).

Every write is idempotent, so the drain may write a batch again after a crash and nothing is
counted twice: visit starts are pipeline-update upserts (``started_at`` a minimum, the other fields
kept once set), page views are inserts keyed by event id (a duplicate key means "already stored"),
and a page view is counted into its session by an update guarded by the session's ``event_ids``
(:func:`page_view_session_update`).
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
    "visitor_update",
    "visitor_number_update",
    "VISITORS",
    "CUSTOM_EVENTS",
    "ROLLUPS_HOURLY",
]

SESSIONS = "sessions"
PAGE_VIEWS = "page_views"
VISITORS = "visitors"
CUSTOM_EVENTS = "custom_events"
ROLLUPS_HOURLY = "rollups_hourly"

INDEXES: dict[str, list[IndexModel]] = {
    SESSIONS: [
        IndexModel([("site", ASCENDING), ("started_at", ASCENDING)], name="site_started_at"),
        IndexModel([("started_at", ASCENDING)], name="started_at"),
        IndexModel([("site", ASCENDING), ("visitor_id", ASCENDING), ("started_at", DESCENDING)],
                   name="site_visitor_started_at"),
        # keyset pagination of raw sessions (footfall.dashboard_queries.sessions): no in-memory sort
        IndexModel([("site", ASCENDING), ("started_at", ASCENDING), ("_id", ASCENDING)], name="site_started_at_id"),
    ],
    PAGE_VIEWS: [
        IndexModel([("site", ASCENDING), ("ts", ASCENDING)], name="site_ts"),
        IndexModel([("ts", ASCENDING)], name="ts"),
        IndexModel([("session_id", ASCENDING), ("ts", ASCENDING)], name="session_ts"),
    ],
    VISITORS: [
        IndexModel([("site", ASCENDING), ("visitor_number", ASCENDING)], name="site_visitor_number_unique",
                   unique=True, partialFilterExpression={"visitor_number": {"$type": "number"}}),
        IndexModel([("site", ASCENDING), ("first_seen_at", ASCENDING)], name="site_first_seen_at"),
    ],
    # the dashboard queries read these two by site and time (footfall.dashboard_queries)
    CUSTOM_EVENTS: [
        IndexModel([("site", ASCENDING), ("ts", ASCENDING)], name="site_ts"),
        IndexModel([("ts", ASCENDING)], name="ts"),
    ],
    ROLLUPS_HOURLY: [
        IndexModel([("site", ASCENDING), ("hour", ASCENDING)], name="site_hour"),
    ],
}


def _session_fields(
    site: str, visitor_id: str, at: Any, referrer: str | None, user_agent: str, page_views: int,
    visitor_number: int | None = None,
) -> dict[str, Any]:
    return {
        "visitor_number": {"$ifNull": ["$visitor_number", visitor_number]},
        "site": {"$ifNull": ["$site", {"$literal": site}]},
        "visitor_id": {"$ifNull": ["$visitor_id", {"$literal": visitor_id}]},
        "started_at": {"$min": ["$started_at", at]},
        "last_seen_at": {"$max": ["$last_seen_at", at]},
        "referrer": {"$ifNull": ["$referrer", {"$literal": referrer}]},
        "user_agent": {"$ifNull": ["$user_agent", {"$literal": user_agent}]},
        "page_views": {"$add": [{"$ifNull": ["$page_views", 0]}, page_views]},
    }


def session_start_update(start: SessionStart) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` upsert that records a visit's start, with plain update operators
    (several times cheaper than a pipeline update on some servers).

    Idempotent: ``started_at`` is a minimum, ``last_seen_at`` a maximum, the start's referrer and
    User-Agent are the session's (only a start sets the referrer), and the rest is set on insert,
    so a page view of the visit written first keeps its count.
    """
    return {"_id": start.session_id}, {
        "$min": {"started_at": start.started_at},
        "$max": {"last_seen_at": start.started_at},
        "$set": {"referrer": start.referrer, "user_agent": start.user_agent},
        "$setOnInsert": {"site": start.site, "visitor_id": start.visitor_id, "page_views": 0,
                         "visitor_number": start.visitor_number},
    }


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
        "visitor_number": view.visitor_number,
    }


def page_view_session_update(
    view: PageView, start: SessionStart | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``(filter, pipeline)`` upsert that counts ``view`` into its session, once.

    Idempotent per event: the session keeps the ``event_ids`` it has counted and the filter
    (``event_ids`` ``$ne`` this id) leaves an already-counted event alone (the upsert then fails
    with a duplicate ``_id``, which the writer takes as success). So a retried batch, or the same
    ``event_id`` sent three times, counts once, in one plain write per page view. Entry and exit page
    follow the earliest and latest view by time, whatever order the views arrive in; a view with the
    same time as the current exit page becomes the exit page.

    :param view: the page view.
    :param start: the visit's start when the same request started it (its referrer and
        User-Agent are the session's); ``None`` for a later page view of the visit.
    """
    referrer = start.referrer if start is not None else None
    at = start.started_at if start is not None else view.ts
    fields = _session_fields(view.site, view.visitor_id, min(at, view.ts), referrer, view.user_agent, 1,
                             view.visitor_number)
    fields["last_seen_at"] = {"$max": ["$last_seen_at", view.ts]}
    if referrer is None:
        del fields["referrer"]  # a later page view's referrer is a page of the visit, not its source
    is_first = {"$or": [{"$eq": [{"$type": "$first_view_at"}, "missing"]}, {"$lt": [view.ts, "$first_view_at"]}]}
    is_last = {"$or": [{"$eq": [{"$type": "$last_view_at"}, "missing"]}, {"$gte": [view.ts, "$last_view_at"]}]}
    fields.update(
        {
            "entry_path": {"$cond": [is_first, {"$literal": view.path}, "$entry_path"]},
            "first_view_at": {"$cond": [is_first, view.ts, "$first_view_at"]},
            "exit_path": {"$cond": [is_last, {"$literal": view.path}, "$exit_path"]},
            "last_view_at": {"$cond": [is_last, view.ts, "$last_view_at"]},
            "event_ids": {"$concatArrays": [{"$ifNull": ["$event_ids", []]}, [{"$literal": view.event_id}]]},
        }
    )
    return {"_id": view.session_id, "event_ids": {"$ne": view.event_id}}, [{"$set": fields}]


def visitor_update(
    site: str, visitor_id: str, first_seen_at: Any, last_seen_at: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` upsert of a ``visitors`` document (one per visitor per site):
    ``first_seen_at`` a minimum, ``last_seen_at`` a maximum. Idempotent; plain operators."""
    return {"_id": f"{site}|{visitor_id}"}, {
        "$min": {"first_seen_at": first_seen_at},
        "$max": {"last_seen_at": last_seen_at},
        "$setOnInsert": {"site": site, "visitor_id": visitor_id},
    }


def visitor_number_update(site: str, visitor_id: str, visitor_number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` that gives a ``visitors`` document its number, only if it has none
    (a number, once set, is kept: a later write never changes it). No upsert: apply after
    :func:`visitor_update`."""
    return {"_id": f"{site}|{visitor_id}", "visitor_number": None}, {"$set": {"visitor_number": visitor_number}}
