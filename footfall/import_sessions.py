"""The importer's sessionizer: page views in time order in, finished ``sessions`` documents out.

Each page view goes through the middleware's own case decision
(:func:`~footfall.middleware.core.claim_session`, :func:`~footfall.middleware.core.session_is_active`,
:func:`~footfall.middleware.core.resolve_visit`) with the cookies that visitor's browser would carry
and the log's timestamp as ``now``.

Memory stays flat however long the log is: only visitors with a session that may still continue are
kept, oldest activity first. When the clock (the log's time) has moved ``session_ttl`` seconds past
a visitor's last page view, no later page view can continue that session (:func:`session_is_active`
is strict), so the session is finished and handed to the writer, and the visitor forgotten. Nothing
is lost by forgetting: a visitor's id is derived from the site, IP and User-Agent, so a returning
visitor gets the same id, and a new session, exactly as if it had been remembered.
"""

from __future__ import annotations

import base64
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from footfall.enrich import referrer_host, utm_fields
from footfall.events import PageView
from footfall.middleware.core import Identity, claim_session, resolve_visit, session_is_active
from footfall.stores.documents import page_view_document, visit_facts
from footfall.stores.rollup_marks import DIRTY, HOURS, dirty_token, hour_of

__all__ = ["Place", "Sessionizer", "external_referrer_host", "visitor_id", "session_id", "event_id"]

Place = tuple[str | None, str | None]  # (ISO 3166-1 alpha-2 country code, city), each or None
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://footfall.invalid/import-log")


def visitor_id(site: str, client_ip: str, user_agent: str) -> str:
    """The visitor id the importer derives for ``(client IP, User-Agent)`` on ``site`` (a UUID 5)."""
    return str(uuid.uuid5(_NAMESPACE, f"visitor\n{site}\n{client_ip}\n{user_agent}"))


def session_id(visitor: str, started_at: datetime) -> str:
    """The session id derived from the visitor and the session's first page view time, in the
    middleware's shape: 16 bytes as URL-safe base64 without padding (22 characters)."""
    digest = uuid.uuid5(_NAMESPACE, f"session\n{visitor}\n{started_at.isoformat()}").bytes
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def event_id(site: str, raw_line: str, occurrence: int) -> str:
    """The page view id: the site, the raw line and how many identical lines came before it."""
    return str(uuid.uuid5(_NAMESPACE, f"page_view\n{site}\n{occurrence}\n{raw_line}"))


def external_referrer_host(referrer: str, hosts: Sequence[str]) -> str | None:
    """``referrer_host`` for a site served on several host names.

    :func:`footfall.enrich.referrer_host` (the live rule) against each of ``hosts``: a referrer on
    any of them (``www.`` ignored, as live) is same-site.

    :param referrer: the logged ``Referer``, ``""`` for none.
    :param hosts: the site's own host names, lower case; empty: every referrer is external.
    :return: the external referrer's bare host, or ``None``.
    """
    found = referrer_host(referrer, "")
    if found is None or any(referrer_host(referrer, host) is None for host in hosts):
        return None
    return found


@dataclass(slots=True)
class _Browser:
    """What one (IP, User-Agent) browser carries between its page views, and its open session."""

    identity: Identity
    last_seen_at: datetime
    session: dict[str, Any]
    hours: set[datetime] = field(default_factory=set)


class Sessionizer:
    """Turns page views, given in time order, into ``page_views`` and ``sessions`` documents.

    :param site: the site of every document.
    :param session_ttl: seconds; a page view less than this after its visitor's previous one
        continues that session (``FOOTFALL_SESSION_TTL``).
    :param hosts: the site's own host names (referrers on them are same-site).
    :param place_of: ``client IP -> (country, city)``; the IP goes no further.
    :param on_page_view: receives each ``page_views`` document (``visitor_number`` still ``None``).
    :param on_session: receives each finished ``sessions`` document, with its rollup marks
        (``hours``, a fresh ``rollup_dirty``; :mod:`footfall.stores.rollup_marks`).
    """

    def __init__(self, *, site: str, session_ttl: int, hosts: Sequence[str], place_of: Callable[[str], Place],
                 on_page_view: Callable[[dict[str, Any]], None],
                 on_session: Callable[[dict[str, Any]], None]) -> None:
        self.site = site
        self.session_ttl = session_ttl
        self.hosts = tuple(hosts)
        self.place_of = place_of
        self.on_page_view = on_page_view
        self.on_session = on_session
        self._browsers: OrderedDict[tuple[str, str], _Browser] = OrderedDict()  # least recently seen first
        self.sessions = 0  # sessions finished so far
        self.peak_browsers = 0  # the most browsers remembered at once

    def expire(self, now: datetime) -> None:
        """Finish the sessions no page view at ``now`` or later can continue, and forget their
        browsers. Call it whenever the clock moves on; ``now`` never goes back."""
        while self._browsers:
            key, browser = next(iter(self._browsers.items()))
            if session_is_active(browser.last_seen_at, now, self.session_ttl):
                return
            del self._browsers[key]
            self._finish(browser)

    def finish_all(self) -> None:
        """Finish every open session (the end of the log)."""
        while self._browsers:
            _, browser = self._browsers.popitem(last=False)
            self._finish(browser)

    def _finish(self, browser: _Browser) -> None:
        doc = browser.session
        doc[HOURS] = sorted(browser.hours)
        doc[DIRTY] = dirty_token()
        self.sessions += 1
        self.on_session(doc)

    def page_view(self, now: datetime, *, client_ip: str, user_agent: str, target: str, referrer: str,
                  view_id: str) -> None:
        """Take one page view at ``now`` (not earlier than the previous one's).

        :param now: the log line's time (UTC).
        :param client_ip: ``%h``; used for the visitor and the place, never stored.
        :param user_agent: the logged User-Agent (``""`` for none).
        :param target: the request target, query included.
        :param referrer: the logged referrer (``""`` for none).
        :param view_id: the page view's id (:func:`event_id`).
        """
        key = (client_ip, user_agent)
        browser = self._browsers.get(key)
        identity, last_seen_at = (browser.identity, browser.last_seen_at) if browser else (Identity(None, None), now)
        fresh_visitor_id = identity.visitor_id or visitor_id(self.site, client_ip, user_agent)
        claim = claim_session(identity, fresh_visitor_id=fresh_visitor_id,
                              fresh_session_id=session_id(fresh_visitor_id, now))
        active = claim.claimed_session_id is not None and session_is_active(last_seen_at, now, self.session_ttl)
        visit = resolve_visit(claim, session_active=active, now=now)
        path, _, query = target.partition("?")
        country, city = self.place_of(client_ip)
        host = self.hosts[0] if self.hosts else ""
        if visit.is_new_session or browser is None:
            if browser is not None:
                del self._browsers[key]
                self._finish(browser)
            facts = visit_facts(referrer=referrer, host=host, user_agent=user_agent, country=country, city=city)
            facts["referrer_host"] = external_referrer_host(referrer, self.hosts)
            session = {
                "_id": visit.session_id, "site": self.site, "visitor_id": visit.visitor_id,
                "started_at": now, "last_seen_at": now, "page_views": 0,
                "entry_path": path, "exit_path": path, "referrer": referrer,
                "user_agent": user_agent, "first_view_at": now, "last_view_at": now,
                **facts, **utm_fields(query), "paths": [], "routes": [], "events": 0, "event_names": [],
                "start_recorded": True,
            }
            browser = _Browser(Identity(visit.visitor_id, visit.session_id), now, session, {hour_of(now)})
            self._browsers[key] = browser
            if len(self._browsers) > self.peak_browsers:
                self.peak_browsers = len(self._browsers)
        else:
            browser.identity = Identity(visit.visitor_id, visit.session_id)
            browser.last_seen_at = now
            browser.hours.add(hour_of(now))
            self._browsers.move_to_end(key)
        session = browser.session
        session.update(page_views=session["page_views"] + 1, last_seen_at=now, last_view_at=now, exit_path=path)
        if path not in session["paths"]:
            session["paths"].append(path)
        self.on_page_view(page_view_document(PageView(
            event_id=view_id, site=self.site, session_id=visit.session_id, visitor_id=visit.visitor_id,
            ts=now, path=path, query=query, referrer=referrer, title="", user_agent=user_agent,
            host=host, country=country, city=city,
        )))
