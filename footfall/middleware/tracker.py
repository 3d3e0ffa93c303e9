"""The synchronous tracker: the core's decisions carried out against Redis and MongoDB.

Shared by the WSGI middleware and anything else that tracks synchronously; it knows nothing of WSGI.
Every store failure is turned into :class:`~footfall.errors.StoreUnavailable` by the stores, logged
here, and counted in :class:`TrackerCounters` so nothing is lost silently.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from footfall.events import PageView, SessionStart, TrackEvent
from footfall.middleware.bots import is_crawler
from footfall.middleware.cookies import CookieCodec, new_session_id, new_visitor_id
from footfall.middleware.core import (
    RequestKind,
    Visit,
    claim_session,
    classify_request,
    resolve_visit,
)
from footfall.settings import Settings
from footfall.stores.mongo_recorder import MongoRecorder
from footfall.stores.redis_sessions import RedisSessionStore

__all__ = ["Tracker", "TrackerCounters", "RequestFacts"]

log = logging.getLogger("footfall.tracker")


@dataclass
class TrackerCounters:
    """Per-process counts since start, read by ``/analytics/health``.

    :ivar visits_unresolved: tracked requests served without a visit because Redis was down.
    :ivar records_failed: session starts and page views MongoDB did not take.
    """

    visits_unresolved: int = 0
    records_failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"visits_unresolved": self.visits_unresolved, "records_failed": self.records_failed}


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the tracker needs from an HTTP request, read by the adapter.

    :ivar path: the request path without query string.
    :ivar referrer: the ``Referer`` header or ``""``.
    """

    method: str
    path: str
    query: str
    user_agent: str | None
    cookie_header: str | None
    referrer: str


class Tracker:
    """Classifies, resolves and records tracked requests.

    :param settings: footfall's settings (``FOOTFALL_SECRET_KEY`` required).
    :param sessions: the Redis active-session store.
    :param recorder: the MongoDB recorder.
    :raises ConfigurationError: no secret key.
    """

    def __init__(self, settings: Settings, sessions: RedisSessionStore, recorder: MongoRecorder) -> None:
        self.settings = settings
        self.cookies = CookieCodec(settings)
        self.sessions = sessions
        self.recorder = recorder
        self.counters = TrackerCounters()

    def classify(self, facts: RequestFacts) -> RequestKind:
        """Tracked, excluded or crawler (see :func:`footfall.middleware.core.classify_request`)."""
        return classify_request(
            facts.method, facts.path, facts.user_agent,
            exclude_paths=self.settings.exclude_paths, is_crawler=is_crawler,
        )

    def is_crawler(self, user_agent: str | None) -> bool:
        """Whether a request with this User-Agent counts nowhere (missing, or on the crawler list)."""
        return not user_agent or not user_agent.strip() or is_crawler(user_agent)

    def resolve(self, facts: RequestFacts, *, site: str, now: datetime) -> Visit | None:
        """Decide the request's visit with one Redis round trip; record a visit that starts.

        :param site: the site a starting visit belongs to.
        :param now: the request's instant (UTC).
        :return: the :class:`Visit`, or ``None`` when Redis is down (logged and counted; the
            request goes on untracked: footfall fails open).
        """
        claim = claim_session(
            self.cookies.read(facts.cookie_header),
            fresh_visitor_id=new_visitor_id(), fresh_session_id=new_session_id(),
        )
        try:
            active = self.sessions.slide_or_start(claim, site=site, now=now)
        except Exception as exc:  # noqa: BLE001 - fail open: nothing may raise into the app
            self.counters.add("visits_unresolved")
            log.warning("request not tracked, session store unavailable: %s", exc)
            return None
        visit = resolve_visit(claim, session_active=active, now=now)
        if visit.is_new_session:
            start = SessionStart(visit.session_id, visit.visitor_id, site, now, facts.referrer,
                                 facts.user_agent or "")
            try:
                self.recorder.record_session_start(start)
            except Exception as exc:  # noqa: BLE001 - fail open, counted
                self.counters.add("records_failed")
                log.warning("visit %s not recorded: %s", visit.session_id, exc)
        return visit

    def page_view_from_event(self, event: TrackEvent, visit: Visit, user_agent: str) -> PageView:
        """The :class:`PageView` a ``page_view`` event records (a UUID4 event id when it has none)."""
        return PageView(
            event_id=event.event_id or str(uuid.uuid4()), site=event.site,
            session_id=visit.session_id, visitor_id=visit.visitor_id, ts=visit.at,
            path=event.path, query=event.query, referrer=event.referrer, title=event.title,
            user_agent=user_agent,
        )

    def close(self) -> None:
        """Close the Redis connection pool and the MongoDB client (at shutdown, in tests)."""
        self.sessions.client.close()
        self.recorder.db.client.close()

    def record_page_view(self, view: PageView) -> None:
        """Store a page view.

        :raises StoreUnavailable: MongoDB did not take it (also counted in ``records_failed``).
        """
        try:
            self.recorder.record_page_view(view)
        except Exception:
            self.counters.add("records_failed")
            raise
