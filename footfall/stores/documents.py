"""MongoDB documents and write operations for footfall's records: pure builders, no I/O.

Collections (issue 2's storage section, extended by ``docs/data-model.md``, which lists every field):

- ``sessions``: one document per visit, ``_id`` = session id, with ``site``, ``visitor_id``,
  ``started_at``, ``last_seen_at`` (UTC), ``page_views``, ``entry_path``, ``exit_path``, ``referrer``,
  ``user_agent``; plus ``first_view_at`` / ``last_view_at``, the times of the entry and exit page
  views, which let events arriving out of order still pick the right entry and exit page, and
  ``event_ids``, the page views and custom events already counted (so a retry is not counted again).
  Enriched (:mod:`footfall.enrich`): ``referrer_host``, ``device``, ``browser``, ``os``, ``country``,
  ``city`` from the request that started the visit; ``utm_source`` / ``utm_medium`` /
  ``utm_campaign`` from its first page view by time; ``paths`` and ``routes`` (distinct), ``events``
  (custom events counted) and ``event_names`` (distinct). ``start_recorded`` is ``true`` once the
  visit's start is written (the guard that makes a start's write tell whether it was new).
- ``page_views``: ``_id`` = event id (the unique index that stores a retried event once), ``site``,
  ``session_id``, ``visitor_id``, ``ts``, ``path``, ``query``, ``referrer``, ``title``,
  ``visitor_number``, ``route``, ``device``, ``browser``, ``os``, ``country``.
- ``custom_events``: ``_id`` = event id, ``site``, ``session_id``, ``visitor_id``,
  ``visitor_number``, ``ts``, ``name``, ``props``, ``path``, ``route``.
- ``visitors``: one document per visitor per site, ``_id`` = ``"<site>|<visitor id>"``, ``site``,
  ``visitor_id``, ``visitor_number``, ``first_seen_at``, ``last_seen_at``.
- ``rollups_hourly``: see :mod:`footfall.stores.rollups`.

Sessions carry ``visitor_number`` too (``null`` when the visitor has none).

Every write is idempotent, so the drain may write a batch again after a crash and nothing is
counted twice: visit starts are upserts guarded by ``start_recorded`` (``started_at`` a minimum),
page views and custom events are inserts keyed by event id (a duplicate key means "already
stored"), and each is counted into its session by an update guarded by the session's
``event_ids`` (:func:`page_view_session_update`, :func:`custom_event_session_update`). A guarded
update that finds its record already counted fails with a duplicate ``_id``: that is how the writer
tells, per operation, what the write proved new (:mod:`footfall.stores.mongo_writer`).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from footfall.enrich import UTM_KEYS, describe_user_agent, referrer_host, utm_fields
from footfall.events import CustomEvent, PageView, SessionStart
from footfall.stores.rollup_marks import session_marks, session_marks_pipeline, visitor_marks

__all__ = [
    "SESSIONS",
    "PAGE_VIEWS",
    "CUSTOM_EVENTS",
    "VISITORS",
    "ROLLUPS_HOURLY",
    "ROLLUPS",
    "ROLLUP_SITES",
    "DIRTY_MARK",
    "INDEXES",
    "visit_facts",
    "session_start_update",
    "page_view_document",
    "page_view_session_update",
    "custom_event_document",
    "custom_event_session_update",
    "visitor_update",
    "visitor_number_update",
]

SESSIONS = "sessions"
PAGE_VIEWS = "page_views"
CUSTOM_EVENTS = "custom_events"
VISITORS = "visitors"
ROLLUPS_HOURLY = "rollups_hourly"
ROLLUPS = "rollups"  # footfall.stores.rollup_build
ROLLUP_SITES = "rollup_sites"

INDEXES: dict[str, list[IndexModel]] = {
    SESSIONS: [
        IndexModel([("site", ASCENDING), ("started_at", ASCENDING)], name="site_started_at"),
        IndexModel([("started_at", ASCENDING)], name="started_at"),
        IndexModel([("site", ASCENDING), ("visitor_id", ASCENDING), ("started_at", DESCENDING)],
                   name="site_visitor_started_at"),
        IndexModel([("site", ASCENDING), ("last_seen_at", ASCENDING)], name="site_last_seen_at"),
        # keyset pagination of raw sessions (footfall.dashboard_queries.sessions): no in-memory sort
        IndexModel([("site", ASCENDING), ("started_at", ASCENDING), ("_id", ASCENDING)], name="site_started_at_id"),
    ],
    PAGE_VIEWS: [
        IndexModel([("site", ASCENDING), ("ts", ASCENDING)], name="site_ts"),
        IndexModel([("ts", ASCENDING)], name="ts"),
        IndexModel([("session_id", ASCENDING), ("ts", ASCENDING)], name="session_ts"),
    ],
    CUSTOM_EVENTS: [
        IndexModel([("site", ASCENDING), ("ts", ASCENDING)], name="site_ts"),
        IndexModel([("ts", ASCENDING)], name="ts"),
        IndexModel([("session_id", ASCENDING), ("ts", ASCENDING)], name="session_ts"),
    ],
    VISITORS: [
        IndexModel([("site", ASCENDING), ("visitor_number", ASCENDING)], name="site_visitor_number_unique",
                   unique=True, partialFilterExpression={"visitor_number": {"$type": "number"}}),
        IndexModel([("site", ASCENDING), ("first_seen_at", ASCENDING)], name="site_first_seen_at"),
    ],
    ROLLUPS_HOURLY: [
        IndexModel([("site", ASCENDING), ("hour", ASCENDING)], name="site_hour"),
        IndexModel([("hour", ASCENDING)], name="hour"),
    ],
    ROLLUPS: [IndexModel([("site", ASCENDING), ("kind", ASCENDING), ("level", ASCENDING), ("at", ASCENDING)],
                         name="site_kind_level_at")],
}
# the rollup marks (footfall.stores.rollup_marks): only dirty documents are in these indexes. The
# filter is {"$gt": ""} (a token is a non-empty string), not {"$exists": true}: SecantusDB plans a
# collection scan for $exists even with a partial or sparse index, MongoDB takes either.
DIRTY_MARK: dict[str, Any] = {"rollup_dirty": {"$gt": ""}}
for _collection in (SESSIONS, VISITORS):
    INDEXES[_collection].append(IndexModel([("rollup_dirty", ASCENDING), ("site", ASCENDING)],
                                           name="rollup_dirty_site", partialFilterExpression=DIRTY_MARK))


def visit_facts(
    *, referrer: str | None, host: str, user_agent: str, country: str | None, city: str | None
) -> dict[str, Any]:
    """The enriched session fields a request gives its visit (``docs/data-model.md``).

    :param referrer: the visit's referrer, or ``None`` when the request did not start the visit (a
        later page's referrer is a page of the visit, not its source: no ``referrer_host`` then).
    :param host: the request's own host, to tell a same-site referrer.
    :param user_agent: the request's User-Agent.
    :param country: ISO 3166-1 alpha-2 code or ``None``; ``city`` likewise.
    :return: ``{"device", "browser", "os", "country", "city"}`` plus ``"referrer_host"`` when
        ``referrer`` is given.
    """
    ua = describe_user_agent(user_agent)
    facts: dict[str, Any] = {"device": ua.device, "browser": ua.browser, "os": ua.os, "country": country,
                             "city": city}
    if referrer is not None:
        facts["referrer_host"] = referrer_host(referrer, host)
    return facts


_EMPTY_VISIT: dict[str, Any] = {"page_views": 0, "events": 0, "paths": [], "routes": [], "event_names": [],
                **dict.fromkeys(UTM_KEYS)}


def session_start_update(start: SessionStart) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` upsert that records a visit's start, with plain update operators
    (several times cheaper than a pipeline update on some servers).

    Idempotent: ``started_at`` is a minimum, ``last_seen_at`` a maximum, the start's referrer,
    User-Agent and what they say (:func:`visit_facts`) are the session's (only a start sets the
    referrer), and the rest is set on insert, so a page view of the visit written first keeps its
    count. Guarded: the filter only matches a session whose start is not recorded yet, so writing the
    same start again fails with a duplicate ``_id`` (taken as success, and as "not new").
    """
    facts = visit_facts(referrer=start.referrer, host=start.host, user_agent=start.user_agent,
                        country=start.country, city=start.city)
    marks = session_marks(start.started_at)
    return {"_id": start.session_id, "start_recorded": {"$ne": True}}, {
        "$min": {"started_at": start.started_at},
        "$max": {"last_seen_at": start.started_at},
        "$set": {"referrer": start.referrer, "user_agent": start.user_agent, **facts, "start_recorded": True,
                 **marks["$set"]},
        "$addToSet": marks["$addToSet"],
        "$setOnInsert": {"site": start.site, "visitor_id": start.visitor_id, "visitor_number": start.visitor_number,
                         **_EMPTY_VISIT},
    }


def _literal(value: Any) -> Any:
    return {"$literal": value}


def _keep_or(field: str, value: Any) -> dict[str, Any]:
    return {"$ifNull": [f"${field}", _literal(value)]}


def _session_pipeline(
    record: PageView | CustomEvent, start: SessionStart | None, *, page_views: int, events: int
) -> dict[str, Any]:
    """The ``$set`` stage fields a page view or custom event (and the start that came with it)
    writes to its session: counts, times, the visit's facts and the ``event_ids`` guard."""
    at = min(start.started_at, record.ts) if start is not None else record.ts
    fields: dict[str, Any] = {
        "visitor_number": {"$ifNull": ["$visitor_number", record.visitor_number]},
        "site": _keep_or("site", record.site),
        "visitor_id": _keep_or("visitor_id", record.visitor_id),
        "started_at": {"$min": ["$started_at", at]},
        "last_seen_at": {"$max": ["$last_seen_at", record.ts]},
        "page_views": {"$add": [{"$ifNull": ["$page_views", 0]}, page_views]},
        "events": {"$add": [{"$ifNull": ["$events", 0]}, events]},
        "paths": {"$ifNull": ["$paths", []]},
        "routes": {"$ifNull": ["$routes", []]},
        "event_names": {"$ifNull": ["$event_names", []]},
        "event_ids": {"$concatArrays": [{"$ifNull": ["$event_ids", []]}, [_literal(record.event_id)]]},
        **session_marks_pipeline(record.ts, *([start.started_at] if start is not None else [])),
    }
    if start is not None:  # the request that started the visit: its facts are the session's
        facts = visit_facts(referrer=start.referrer, host=start.host, user_agent=start.user_agent,
                            country=start.country, city=start.city)
        fields.update({"referrer": _literal(start.referrer), "user_agent": _literal(start.user_agent),
                       "start_recorded": True, **{key: _literal(value) for key, value in facts.items()}})
    else:  # a later request: fills in what the start (not written yet) will overwrite
        facts = visit_facts(referrer=None, host=record.host, user_agent=record.user_agent, country=record.country,
                            city=record.city)
        fields.update({"user_agent": _keep_or("user_agent", record.user_agent),
                       "referrer_host": {"$ifNull": ["$referrer_host", None]},
                       **{key: _keep_or(key, value) for key, value in facts.items()}})
    return fields


def page_view_document(view: PageView) -> dict[str, Any]:
    """The ``page_views`` document for ``view`` (``_id`` = its event id), with the device, browser
    and OS its User-Agent says (:func:`footfall.enrich.describe_user_agent`)."""
    ua = describe_user_agent(view.user_agent)
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
        "route": view.route,
        "device": ua.device,
        "browser": ua.browser,
        "os": ua.os,
        "country": view.country,
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
    same time as the current exit page becomes the exit page. The UTM fields follow the entry page
    (the first view by time); ``paths`` and ``routes`` gain the view's path and route.

    :param view: the page view.
    :param start: the visit's start when the same request started it (its referrer, User-Agent and
        their facts are the session's); ``None`` for a later page view of the visit, whose
        device, browser, OS, country and city only fill in fields still unset (the start, when
        written later, overwrites them).
    """
    fields = _session_pipeline(view, start, page_views=1, events=0)
    is_first = {"$or": [{"$eq": [{"$type": "$first_view_at"}, "missing"]}, {"$lt": [view.ts, "$first_view_at"]}]}
    is_last = {"$or": [{"$eq": [{"$type": "$last_view_at"}, "missing"]}, {"$gte": [view.ts, "$last_view_at"]}]}
    fields.update(
        {
            "entry_path": {"$cond": [is_first, _literal(view.path), "$entry_path"]},
            "first_view_at": {"$cond": [is_first, view.ts, "$first_view_at"]},
            "exit_path": {"$cond": [is_last, _literal(view.path), "$exit_path"]},
            "last_view_at": {"$cond": [is_last, view.ts, "$last_view_at"]},
            "paths": {"$setUnion": [{"$ifNull": ["$paths", []]}, [_literal(view.path)]]},
            **{key: {"$cond": [is_first, _literal(value), f"${key}"]} for key, value in utm_fields(view.query).items()},
        }
    )
    if view.route is not None:
        fields["routes"] = {"$setUnion": [{"$ifNull": ["$routes", []]}, [_literal(view.route)]]}
    return {"_id": view.session_id, "event_ids": {"$ne": view.event_id}}, [{"$set": fields}]


def custom_event_document(event: CustomEvent) -> dict[str, Any]:
    """The ``custom_events`` document for ``event`` (``_id`` = its event id)."""
    return {
        "_id": event.event_id,
        "site": event.site,
        "session_id": event.session_id,
        "visitor_id": event.visitor_id,
        "visitor_number": event.visitor_number,
        "ts": event.ts,
        "name": event.name,
        "props": dict(event.props),
        "path": event.path,
        "route": event.route,
    }


def custom_event_session_update(
    event: CustomEvent, start: SessionStart | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``(filter, pipeline)`` upsert that counts ``event`` into its session's ``events`` and
    ``event_names``, once: guarded by ``event_ids`` exactly as :func:`page_view_session_update`
    (a retry fails with a duplicate ``_id``, taken as success). The event slides ``last_seen_at``
    like a page view; it changes no page field (entry, exit, paths, UTM).

    :param event: the custom event.
    :param start: the visit's start when the same request started it, as for a page view.
    """
    fields = _session_pipeline(event, start, page_views=0, events=1)
    fields["event_names"] = {"$setUnion": [{"$ifNull": ["$event_names", []]}, [_literal(event.name)]]}
    fields.update({key: {"$ifNull": [f"${key}", None]} for key in UTM_KEYS})
    return {"_id": event.session_id, "event_ids": {"$ne": event.event_id}}, [{"$set": fields}]


def visitor_update(
    site: str, visitor_id: str, first_seen_at: Any, last_seen_at: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` upsert of a ``visitors`` document (one per visitor per site):
    ``first_seen_at`` a minimum, ``last_seen_at`` a maximum. Idempotent; plain operators."""
    return {"_id": f"{site}|{visitor_id}"}, {
        "$min": {"first_seen_at": first_seen_at},
        "$max": {"last_seen_at": last_seen_at},
        "$set": visitor_marks(),
        "$setOnInsert": {"site": site, "visitor_id": visitor_id},
    }


def visitor_number_update(site: str, visitor_id: str, visitor_number: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` that gives a ``visitors`` document its number, only if it has none
    (a number, once set, is kept: a later write never changes it). No upsert: apply after
    :func:`visitor_update`."""
    return {"_id": f"{site}|{visitor_id}", "visitor_number": None}, {"$set": {"visitor_number": visitor_number,
                                                                          **visitor_marks()}}
