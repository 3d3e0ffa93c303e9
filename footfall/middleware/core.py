"""The sans-I/O core: which case is this request, and what must be written?

No sockets, no clock, no randomness here (h11's rule; itsdangerous passes its clock in the same way).
The WSGI adapter, the log importer and the tests all call these functions:

1. :func:`classify_request` — tracked, excluded or a crawler (no store is touched for the last two);
2. :func:`claim_session` — from the verified cookies, which visitor this is and which session the
   request claims to continue, plus the fresh session id to use if that claim fails;
3. the caller asks its store whether the claimed session is still active for that visitor
   (Redis: key present; the importer: :func:`session_is_active` on the last page view's time);
4. :func:`resolve_visit` — the case and the :class:`Visit` to publish, set cookies for and record.

The three cases come from the design seed ``shared/seeds/002_5b98de07f6724198.txt``:
new visitor (set both cookies), same session (slide its TTL), expired session (new session, *reuse*
the visitor id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

__all__ = [
    "Case",
    "Identity",
    "SessionClaim",
    "Visit",
    "RequestKind",
    "classify_request",
    "is_excluded_path",
    "claim_session",
    "resolve_visit",
    "session_is_active",
]

RequestKind = Literal["tracked", "excluded", "crawler"]

UNTRACKED_METHODS = frozenset({"OPTIONS", "HEAD"})


class Case(StrEnum):
    """The three cases of the design seed."""

    NEW_VISITOR = "new_visitor"
    SAME_SESSION = "same_session"
    EXPIRED_SESSION = "expired_session"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the request's cookies say after signature verification (``None`` = absent or forged).

    :ivar visitor_number: the visitor number the ``visitor_id`` cookie carries, if any.
    :ivar number_site: the site that number belongs to (numbers are per site).
    """

    visitor_id: str | None
    session_id: str | None
    visitor_number: int | None = None
    number_site: str | None = None


@dataclass(frozen=True, slots=True)
class SessionClaim:
    """The request's claim before the store is asked.

    :ivar visitor_id: the visitor this request belongs to (the cookie's, or a fresh one).
    :ivar is_new_visitor: ``True`` when no valid ``visitor_id`` cookie came with the request.
    :ivar claimed_session_id: the session the request says it continues, or ``None`` (new visitor,
        or no valid ``session`` cookie): the store must confirm it is active for ``visitor_id``.
    :ivar fresh_session_id: the session id to start if the claim fails.
    :ivar known_number: the visitor number the cookie carries for the request's site, or ``None``.
    """

    visitor_id: str
    is_new_visitor: bool
    claimed_session_id: str | None
    fresh_session_id: str
    known_number: int | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """The decision for one tracked request, published at ``environ["footfall.visit"]``.

    :ivar case: which of the three cases this is.
    :ivar visitor_id: the visitor id (UUID4 string), kept for ``visitor_ttl`` seconds.
    :ivar session_id: the session (visit) id, ≥128 random bits, URL-safe.
    :ivar at: the instant of the decision, a timezone-aware UTC datetime.
    :ivar visitor_number: the visitor's sequential number on ``site`` (``#0042``), or ``None``
        when numbering failed or the visitor predates it (see ``footfall numbers backfill``).
    :ivar site: the site of the request (numbers are per site).
    :ivar number_learned: the number is known now but the visitor's cookie did not carry it, so
        the cookie is re-issued with it.
    """

    case: Case
    visitor_id: str
    session_id: str
    at: datetime
    visitor_number: int | None = None
    site: str | None = None
    number_learned: bool = False

    @property
    def is_new_visitor(self) -> bool:
        """``True`` for the first request of a visitor footfall has never seen (no valid cookie)."""
        return self.case is Case.NEW_VISITOR

    @property
    def is_new_session(self) -> bool:
        """``True`` when this request starts a visit (new visitor or expired session)."""
        return self.case is not Case.SAME_SESSION

    @property
    def sets_visitor_cookie(self) -> bool:
        """Whether to (re-)issue the ``visitor_id`` cookie.

        It is issued for a new visitor and re-issued at the start of every later visit, so its
        ``Max-Age`` counts from the visitor's last visit, as GA4 refreshes ``_ga``; within a visit
        only the ``session`` cookie is re-issued, unless the visitor's number became known.
        """
        return self.case is not Case.SAME_SESSION or self.number_learned


def is_excluded_path(path: str, exclude_paths: Iterable[str]) -> bool:
    """Whether ``path`` is under one of ``exclude_paths``.

    An entry matches the path itself and, at a segment boundary, everything below it: ``/static/``
    and ``/static`` both exclude ``/static/app.css`` but not ``/staticky``.

    :param path: the request path, without query string.
    :param exclude_paths: the configured entries (``FOOTFALL_EXCLUDE_PATHS``).
    """
    for entry in exclude_paths:
        stem = entry.rstrip("/")
        if path == entry or path == stem or path.startswith(stem + "/"):
            return True
    return False


def classify_request(
    method: str,
    path: str,
    user_agent: str | None,
    *,
    exclude_paths: Iterable[str],
    is_crawler: Callable[[str], bool],
) -> RequestKind:
    """Decide whether a request is tracked at all.

    ``OPTIONS`` and ``HEAD`` requests and excluded paths are ``"excluded"``; a request with no
    User-Agent, or one the crawler list recognises, is ``"crawler"``. Neither touches a store, gets
    cookies or counts anywhere (issue 2's rules; the seed's "filter User-Agents in middleware").

    :param method: the HTTP method, upper case.
    :param path: the request path without query string.
    :param user_agent: the ``User-Agent`` header or ``None``.
    :param exclude_paths: entries for :func:`is_excluded_path`.
    :param is_crawler: predicate over a non-empty User-Agent string.
    :return: ``"tracked"``, ``"excluded"`` or ``"crawler"``.
    """
    if method in UNTRACKED_METHODS or is_excluded_path(path, exclude_paths):
        return "excluded"
    if not user_agent or not user_agent.strip() or is_crawler(user_agent):
        return "crawler"
    return "tracked"


def claim_session(
    identity: Identity, *, fresh_visitor_id: str, fresh_session_id: str, site: str | None = None
) -> SessionClaim:
    """Turn verified cookies into a claim for the store to confirm.

    A request with no valid ``visitor_id`` cookie is a new visitor whatever its ``session`` cookie
    says (issue 2: "New visitor (no valid visitor_id cookie)"), so it claims no session.

    :param identity: the verified cookies.
    :param fresh_visitor_id: the visitor id to use if the request has none.
    :param fresh_session_id: the session id to use if no session is continued.
    :param site: the request's site: the cookie's visitor number counts only on its own site.
    :return: the :class:`SessionClaim`.
    """
    if identity.visitor_id is None:
        return SessionClaim(fresh_visitor_id, True, None, fresh_session_id)
    known = identity.visitor_number if site is not None and identity.number_site == site else None
    return SessionClaim(identity.visitor_id, False, identity.session_id, fresh_session_id, known)


def resolve_visit(
    claim: SessionClaim,
    *,
    session_active: bool,
    now: datetime,
    visitor_number: int | None = None,
    site: str | None = None,
) -> Visit:
    """Decide the case from the claim and the store's answer.

    :param claim: from :func:`claim_session`.
    :param session_active: the store's answer: the claimed session exists, belongs to
        ``claim.visitor_id`` and has not expired (ignored when nothing is claimed).
    :param now: the request's instant, timezone-aware UTC (the log's timestamp when importing).
    :param visitor_number: the store's answer: the visitor's number on ``site``, or ``None``.
    :param site: the request's site.
    :return: the :class:`Visit`.
    """
    learned = visitor_number is not None and visitor_number != claim.known_number
    if claim.is_new_visitor:
        case, session_id = Case.NEW_VISITOR, claim.fresh_session_id
    elif claim.claimed_session_id is not None and session_active:
        case, session_id = Case.SAME_SESSION, claim.claimed_session_id
    else:
        case, session_id = Case.EXPIRED_SESSION, claim.fresh_session_id
    return Visit(case, claim.visitor_id, session_id, now, visitor_number, site, learned)


def session_is_active(last_seen_at: datetime, now: datetime, ttl: int) -> bool:
    """Whether a session last seen at ``last_seen_at`` is still active at ``now``.

    Active means strictly less than ``ttl`` seconds have passed: at exactly ``ttl`` the session has
    expired, as a Redis key set with ``PX ttl`` is gone at that instant and as issue 2's importer
    rule says ("less than the session TTL after that visitor's previous page view").

    :param last_seen_at: the session's previous activity (UTC datetime).
    :param now: the instant to judge at (UTC datetime).
    :param ttl: the session TTL in seconds.
    """
    return now - last_seen_at < timedelta(seconds=ttl)
