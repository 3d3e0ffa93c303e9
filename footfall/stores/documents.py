"""MongoDB documents and write operations for footfall's records: pure builders, no I/O.

Collections (issue 2's storage section, extended by ``docs/data-model.md``, which lists every field):

- ``sessions``: one document per visit, ``_id`` = session id, with ``site``, ``visitor_id``,
  ``started_at``, ``last_seen_at`` (UTC), ``page_views``, ``entry_path``, ``exit_path``, ``referrer``,
  ``user_agent``; plus ``first_view_at`` / ``last_view_at``, the times of the entry and exit page
  views, which let events arriving out of order still pick the right entry and exit page, and
  ``count_tokens``, the tokens of the last 32 drain writes that counted events into the visit (so a
  retried batch is not counted again: :mod:`footfall.stores.counting`).
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
- ``rollups`` and ``rollup_sites``: see :mod:`footfall.stores.rollup_build`.

Sessions carry ``visitor_number`` too (``null`` when the visitor has none).

Every write is idempotent, so the drain may write a batch again after a crash and nothing is
counted twice: visit starts are upserts guarded by ``start_recorded`` (``started_at`` a minimum; a
guarded upsert that finds the start recorded fails with a duplicate ``_id``, which tells the writer
it was not new), page views and custom events are inserts keyed by event id (a duplicate key means
"already stored"), and a batch's records are counted into each visit by one plain-operator update
(:mod:`footfall.stores.session_update`) under the guard of :mod:`footfall.stores.counting`.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from footfall.enrich import UTM_KEYS, describe_user_agent, referrer_host
from footfall.events import CustomEvent, PageView, SessionStart
from footfall.stores.rollup_marks import session_marks, visitor_marks

__all__ = [
    "SESSIONS",
    "PAGE_VIEWS",
    "CUSTOM_EVENTS",
    "VISITORS",
    "ROLLUPS",
    "ROLLUP_SITES",
    "DIRTY_MARK",
    "INDEXES",
    "visit_facts",
    "session_start_update",
    "page_view_document",
    "custom_event_document",
    "visitor_update",
    "visitor_number_update",
]

SESSIONS = "sessions"
PAGE_VIEWS = "page_views"
CUSTOM_EVENTS = "custom_events"
VISITORS = "visitors"
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
