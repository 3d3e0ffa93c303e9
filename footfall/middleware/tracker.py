"""The synchronous tracker: the core's decisions carried out against Redis, one round trip each.

Shared by the WSGI middleware and anything else that tracks synchronously; it knows nothing of WSGI.
The request path never talks to MongoDB: what must be recorded is queued on the Redis Stream in the
same round trip that decides the case, and the drain (:mod:`footfall.drain`) writes it. Events that
cannot be queued (Redis down) are counted here and the count is added to Redis's
``footfall:counters`` by the next request that gets through, in that same round trip.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pymongo.database import Database

from footfall.errors import StoreUnavailable
from footfall.events import PropValue, TrackEvent
from footfall.geo import GeoLookup, Location, build_geo_lookup, parse_trusted_proxies
from footfall.middleware.bots import is_crawler
from footfall.middleware.cookies import CookieCodec, new_session_id, new_visitor_id
from footfall.middleware.core import (
    RequestKind,
    SessionClaim,
    Visit,
    claim_session,
    classify_request,
    resolve_visit,
)
from footfall.middleware.route_templates import RouteResolver
from footfall.settings import Settings
from footfall.stores.event_codec import PageViewFields, encode_payload
from footfall.stores.redis_sessions import QueueResult, RedisSessionStore
from footfall.stores.visitor_numbers import reserve_block

__all__ = ["Tracker", "DroppedCounter", "RequestFacts", "page_view_fields", "host_of"]

log = logging.getLogger("footfall.tracker")

REFILL_RETRY_DELAY = 5  # seconds without trying MongoDB again after a block could not be reserved


class DroppedCounter:
    """Failures this process counted (events it could not queue, visitors it could not number): a
    total since start, and the part not yet added to Redis's counters (handed to the next
    successful round trip)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.unreported = 0

    def add(self) -> None:
        with self._lock:
            self.total += 1
            self.unreported += 1

    def add_reported(self) -> None:
        """Count a failure whose report to Redis is already on its way (in the same round trip)."""
        with self._lock:
            self.total += 1

    def take_unreported(self) -> int:
        with self._lock:
            taken, self.unreported = self.unreported, 0
            return taken

    def give_back(self, count: int) -> None:
        """Return a count taken for a round trip that failed."""
        with self._lock:
            self.unreported += count


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the tracker needs from an HTTP request, read by the adapter.

    :ivar path: the request path without query string.
    :ivar referrer: the ``Referer`` header or ``""``.
    :ivar host: the host of the page (lowercased, no port): the ``Origin`` of a track request, else
        the ``Host`` header; a referrer from the same host is not a source.
    :ivar client_ip: the client's address (:func:`footfall.geo.client_ip`), used to look up the
        country in the request path and never stored.
    """

    method: str
    path: str
    query: str
    user_agent: str | None
    cookie_header: str | None
    referrer: str
    host: str = ""
    client_ip: str | None = None


def host_of(host_header: str | None, origin: str | None = None) -> str:
    """The page's host, lowercased without port: the ``Origin``'s host when the browser sent one
    (a track request posted from another origin is about a page on that origin), else the
    ``Host`` header's; ``""`` when neither is usable."""
    if origin and origin != "null":
        try:
            return (urlsplit(origin).hostname or "").lower()
        except ValueError:
            return ""
    if not host_header:
        return ""
    try:
        return (urlsplit("//" + host_header.strip()).hostname or "").lower()
    except ValueError:
        return ""


def page_view_fields(
    *, site: str, path: str, query: str, referrer: str, title: str, event_id: str | None,
    route: str | None = None, name: str | None = None, props: Mapping[str, PropValue] | None = None,
) -> PageViewFields:
    """The ``page_view`` part of a queued payload (``docs/data-model.md``): a page view, or a custom
    event when ``name`` is given (``type: "custom"`` with ``name`` and ``props``; it is queued,
    and slides the session, like a page view).

    :param route: the matched route template, or ``None`` when the app has no route for the path.
    :param name: a custom event's name (validated by :func:`footfall.events.parse_track_body`).
    :param props: a custom event's flat properties (``None``: none).
    :return: the JSON-ready dict, with a UUID4 ``event_id`` when the client sent none.
    """
    fields: PageViewFields = {"event_id": event_id or str(uuid.uuid4()), "site": site, "path": path,
                              "query": query, "referrer": referrer, "title": title, "route": route,
                              "type": "page_view" if name is None else "custom"}
    if name is not None:
        fields.update(name=name, props=dict(props or {}))
    return fields


@dataclass
class _Attempt:
    """One request's way through the track script: what to send, and what to count if it fails.
    Shared by :class:`Tracker` and its asyncio twin, which differ only in awaiting."""

    tracker: _TrackerBase
    claim: SessionClaim
    site: str
    now: datetime
    payload: str
    has_page_view: bool
    unreported: int
    unnumbered: int
    number_it: bool = True
    location: str = ""  # "<country name>, <CC>" for the live counters, "" when unknown

    def call(self) -> dict[str, Any]:
        """Keyword arguments of the store's ``track``."""
        settings = self.tracker.settings
        return {"site": self.site, "now": self.now, "payload": self.payload, "has_page_view": self.has_page_view,
                "dropped": self.unreported, "number_new_visitor": self.number_it,
                "visitor_ttl": settings.visitor_ttl, "numbers_failed": self.unnumbered,
                "low_water": max(1, settings.visitor_number_block // 2),
                "active_window": settings.active_window, "zone": self.tracker.zone, "location": self.location}

    def go_unnumbered(self) -> None:
        """No block could be reserved: call again without numbering, and count that."""
        self.number_it, self.unnumbered = False, self.unnumbered + 1
        self.tracker.numbers_failed.add_reported()

    def fail(self, exc: Exception) -> None:
        """Redis did not answer: give the counts back, count this request's loss; fail open."""
        self.tracker.dropped.give_back(self.unreported)
        self.tracker.numbers_failed.give_back(self.unnumbered)
        self.tracker.dropped.add()
        if self.claim.is_new_visitor and self.number_it:  # (a refill failure was counted already)
            self.tracker.numbers_failed.add()
        log.warning("request not tracked, Redis unavailable (event counted as dropped): %s", exc)

    def visit(self, result: QueueResult) -> Visit:
        return resolve_visit(self.claim, session_active=result.session_active, now=self.now,
                             visitor_number=result.visitor_number, site=self.site)


class _TrackerBase:
    """What the sync and async trackers share: settings, cookies, counters and every decision."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cookies = CookieCodec(settings)
        self.trusted_proxies = parse_trusted_proxies(settings.trusted_proxies)
        self.geo: GeoLookup = build_geo_lookup(settings.geoip_db)
        self.route_of: RouteResolver | None = None  # set by the adapter that knows the wrapped app
        self.dropped = DroppedCounter()
        self.numbers_failed = DroppedCounter()
        self._refill_retry_at = 0.0  # time.monotonic() before which no refill is tried
        self._prefetching: set[str] = set()  # sites whose next block is being reserved ahead
        self.zone = settings.zone  # "today" of the live counters (FOOTFALL_TIMEZONE)

    def classify(self, facts: RequestFacts) -> RequestKind:
        """Tracked, excluded or crawler (see :func:`footfall.middleware.core.classify_request`)."""
        return classify_request(
            facts.method, facts.path, facts.user_agent,
            exclude_paths=self.settings.exclude_paths, is_crawler=is_crawler,
        )

    def is_crawler(self, user_agent: str | None) -> bool:
        """Whether a request with this User-Agent counts nowhere (missing, or on the crawler list)."""
        return not user_agent or not user_agent.strip() or is_crawler(user_agent)

    def route(self, path: str) -> str | None:
        """The route template ``path`` matches in the wrapped app, or ``None`` (no match, or an app
        whose routes footfall cannot read)."""
        return self.route_of(path) if self.route_of is not None else None

    def page_view_of_event(self, event: TrackEvent) -> PageViewFields:
        """The page view, or custom event, a track event queues (with the route of its page)."""
        return page_view_fields(site=event.site, path=event.path, query=event.query, referrer=event.referrer,
                                title=event.title, event_id=event.event_id, route=self.route(event.path),
                                name=event.name, props=event.props)

    def server_page_view(self, facts: RequestFacts) -> PageViewFields:
        """The page view of a server-rendered page (``FOOTFALL_SERVER_PAGEVIEWS``)."""
        return page_view_fields(site=self.settings.default_site, path=facts.path, query=facts.query,
                                referrer=facts.referrer, title="", event_id=None, route=self.route(facts.path))

    def _payload(self, facts: RequestFacts, site: str, visitor_id: str, at: datetime,
                 page_view: PageViewFields | None, location: Location | None = None) -> str:
        location = location or self.geo.locate(facts.client_ip)
        return encode_payload(site=site, visitor_id=visitor_id, at=at, referrer=facts.referrer,
                              user_agent=facts.user_agent or "", page_view=page_view, host=facts.host,
                              country=location.country_code, city=location.city)

    def _begin(
        self, facts: RequestFacts, site: str, now: datetime, page_view: PageViewFields | None
    ) -> _Attempt:
        identity = self.cookies.read(facts.cookie_header)
        claim = claim_session(
            identity, fresh_visitor_id=identity.visitor_id or new_visitor_id(),  # (a fresh one only if needed)
            fresh_session_id=new_session_id(), site=site,
        )
        location = self.geo.locate(facts.client_ip)  # the IP goes no further than this line
        payload = self._payload(facts, site, claim.visitor_id, now, page_view, location)
        return _Attempt(self, claim, site, now, payload, page_view is not None,
                        self.dropped.take_unreported(), self.numbers_failed.take_unreported(),
                        location=location.label)

    def _may_refill(self, has_db: bool) -> bool:
        if not has_db:
            log.warning("visitor not numbered: no MongoDB to reserve numbers in")
            return False
        return time.monotonic() >= self._refill_retry_at  # after a failure, MongoDB rests a while

    def _refill_failed(self, exc: Exception) -> bool:
        self._refill_retry_at = time.monotonic() + REFILL_RETRY_DELAY
        log.warning("visitor not numbered, could not reserve numbers (next try in %d s): %s", REFILL_RETRY_DELAY, exc)
        return False

    def _page_view_payload(self, visit: Visit, facts: RequestFacts, page_view: PageViewFields) -> str:
        return self._payload(facts, page_view["site"], visit.visitor_id, visit.at, page_view)

    def _queue_failed(self, facts: RequestFacts, exc: Exception) -> bool:
        self.dropped.add()
        log.warning("page view of %s not queued, Redis unavailable (counted as dropped): %s", facts.path, exc)
        return False


class Tracker(_TrackerBase):
    """Classifies and resolves tracked requests, and queues what they record.

    :param settings: footfall's settings (``FOOTFALL_SECRET_KEY`` required).
    :param sessions: the Redis session store and event queue.
    :param db: MongoDB, where blocks of visitor numbers are reserved (``None``: visitors are not
        numbered once Redis's current block is used up).
    :raises ConfigurationError: no secret key.
    """

    def __init__(self, settings: Settings, sessions: RedisSessionStore, db: Database | None = None) -> None:
        super().__init__(settings)
        self.sessions = sessions
        self.db = db
        self._refill_lock = threading.Lock()

    def resolve(
        self, facts: RequestFacts, *, site: str, now: datetime, page_view: PageViewFields | None = None
    ) -> Visit | None:
        """Decide the request's visit, number its visitor and queue what it records, in one Redis
        round trip (plus a MongoDB one for the request that finds the number block used up).

        :param facts: the request (its referrer is recorded with a visit that starts here).
        :param site: the site a visit that starts here belongs to.
        :param now: the request's instant (UTC).
        :param page_view: from :func:`page_view_fields`, when the request is a page view.
        :return: the :class:`Visit`, or ``None`` when Redis is down: logged and counted as a
            dropped event; the request goes on untracked (footfall fails open).
        """
        attempt = self._begin(facts, site, now, page_view)
        try:
            while (result := self.sessions.track(attempt.claim, **attempt.call())).needs_block:
                if not self._refill(site):  # the visit goes on without a number, counted
                    attempt.go_unnumbered()
        except Exception as exc:  # noqa: BLE001 - fail open: nothing may raise into the app
            attempt.fail(exc)
            return None
        if result.numbers_low and site not in self._prefetching:
            self._prefetching.add(site)
            threading.Thread(target=self._prefetch, args=(site,), name="footfall-numbers", daemon=True).start()
        return attempt.visit(result)

    def _prefetch(self, site: str) -> None:
        """Reserve the site's next block ahead, off the request path (a background thread)."""
        try:
            self._refill(site, ahead=True)
        finally:
            self._prefetching.discard(site)

    def _refill(self, site: str, *, ahead: bool = False) -> bool:
        """Reserve a block of visitor numbers in MongoDB and hand it to Redis: ``ahead`` of need
        when the current block runs low (in the background), or now when it ran out (rare: Redis
        lost its allocator, or new visitors outran the background refill).

        :return: ``False`` when it could not (MongoDB down or not configured; logged).
        """
        if not self._may_refill(self.db is not None) or self.db is None:
            return False
        with self._refill_lock:  # the threads of one process reserve one block at a time
            try:
                if self.sessions.has_numbers(site, ahead=ahead):
                    return True  # another thread refilled while this one waited
                first, last = reserve_block(self.db, site, self.settings.visitor_number_block)
                self.sessions.install_block(site, first, last)
            except StoreUnavailable as exc:
                return self._refill_failed(exc)
        log.info("reserved visitor numbers %d-%d for site %r", first, last, site)
        return True

    def queue_page_view(self, visit: Visit, facts: RequestFacts, page_view: PageViewFields) -> bool:
        """Queue a page view of an already-resolved visit (server-rendered pages: a second round
        trip, since whether the response is a page is known only after the app answered).

        :return: ``True`` when queued; ``False`` when Redis is down (logged, counted as dropped).
        """
        try:
            self.sessions.queue(visit.session_id, self._page_view_payload(visit, facts, page_view),
                                visit.visitor_number, site=page_view["site"], now=visit.at, zone=self.zone)
        except Exception as exc:  # noqa: BLE001 - fail open
            return self._queue_failed(facts, exc)
        return True

    def close(self) -> None:
        """Close the Redis connection pool and the MongoDB client (at shutdown, in tests)."""
        self.sessions.client.close()
        if self.db is not None:
            self.db.client.close()
