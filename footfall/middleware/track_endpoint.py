"""``POST /analytics/track`` and its preflight, as pure steps shared by the WSGI and ASGI adapters.

Each step returns either what the next step needs or a :class:`Reply` to send; the adapters only
read the body, await or call the tracker, and turn the :class:`Reply` into their own response.

Statuses (all with a JSON body, issue 2):

- 200 ``{"status": "recorded", "visitor_number", "visitor_label"}``, or ``{"status": "ignored"}``
  for a crawler;
- 204: an allowed CORS preflight;
- 400: malformed JSON, missing/empty ``eventType``, a custom event's bad ``name`` or ``props`` (naming the
  key), bad ``path``, malformed ``Content-Length``;
- 403: a preflight from an origin not in ``FOOTFALL_CORS_ORIGINS``;
- 405: a method other than ``POST`` or ``OPTIONS``;
- 413: a body over 16 KiB;
- 503: Redis did not take the event (counted as dropped; retry with the same ``event_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from footfall.errors import InvalidEvent
from footfall.events import MAX_BODY_BYTES, TrackEvent, parse_track_body
from footfall.middleware.cookies import CookieCodec
from footfall.middleware.core import Visit
from footfall.middleware.cors import cors_headers, preflight_headers
from footfall.middleware.tracker import RequestFacts, host_of
from footfall.settings import Settings
from footfall.stores.visitor_numbers import visitor_label

__all__ = ["Reply", "opening", "event_of", "body_limit", "recorded", "unavailable", "IGNORED_CRAWLER"]

IGNORED_CRAWLER = {"status": "ignored", "reason": "crawler or missing User-Agent"}


@dataclass(frozen=True)
class Reply:
    """An answer to send: status, JSON body (``None`` for none) and headers."""

    status: int
    body: Mapping[str, object] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encoded(self) -> bytes:
        """The body as bytes (empty without a body)."""
        return b"" if self.body is None else json.dumps(self.body).encode()

    def all_headers(self) -> list[tuple[str, str]]:
        """The headers, with ``Content-Type`` and ``Content-Length`` for the body."""
        body = self.encoded()
        extra = [("Content-Type", "application/json")] if self.body is not None else []
        return [*self.headers, *extra, ("Content-Length", str(len(body)))]


def opening(method: str, origin: str | None, settings: Settings) -> Reply | list[tuple[str, str]]:
    """Answer a preflight or a wrong method, or return the CORS headers for a ``POST``."""
    if method == "OPTIONS":
        allowed = preflight_headers(origin, settings.cors_origins)
        if allowed is None:
            return Reply(403, {"error": f"origin {origin!r} is not in FOOTFALL_CORS_ORIGINS"})
        return Reply(204, None, allowed)
    cors = cors_headers(origin, settings.cors_origins)
    if method != "POST":
        return Reply(405, {"error": f"{method} is not allowed here; POST a JSON event"},
                     [*cors, ("Allow", "POST, OPTIONS")])
    return cors


def body_limit(content_length: str | None) -> int:
    """How many body bytes to read: ``Content-Length`` when declared, else one past the limit (so
    an oversized body is seen).

    :raises InvalidEvent: 400 for a malformed or negative ``Content-Length``, 413 for one over 16 KiB.
    """
    if not content_length:
        return MAX_BODY_BYTES + 1
    try:
        length = int(content_length)
    except ValueError:
        raise InvalidEvent(f"Content-Length {content_length!r} is not a number") from None
    if length < 0:  # a negative read would read to the end of the stream, past any limit
        raise InvalidEvent(f"Content-Length {length} is negative")
    if length > MAX_BODY_BYTES:
        raise InvalidEvent(f"body is {length} bytes; at most {MAX_BODY_BYTES} are accepted", status=413)
    return length


def event_of(body: bytes, settings: Settings, cors: list[tuple[str, str]]) -> TrackEvent | Reply:
    """The validated event, or the 400/413 :class:`Reply` that says what was wrong."""
    try:
        return parse_track_body(body, default_site=settings.default_site)
    except InvalidEvent as exc:
        return Reply(exc.status, {"error": exc.message}, cors)


def visit_facts(event: TrackEvent, request: RequestFacts, origin: str | None) -> RequestFacts:
    """The facts the tracker resolves an event's visit from: the event's page (path, query,
    referrer, and the page's host from ``Origin``), the endpoint request's cookies, User-Agent and
    client address."""
    return replace(request, method="POST", path=event.path, query=event.query, referrer=event.referrer,
                   host=host_of(None, origin) if origin else request.host)


def recorded(visit: Visit, cors: list[tuple[str, str]], cookies: CookieCodec, settings: Settings) -> Reply:
    """200 with the visitor's number and label, the cookies and the CORS headers."""
    headers = [*cors, *(("Set-Cookie", value) for value in cookies.set_cookie_headers(visit))]
    return Reply(200, {"status": "recorded", "visitor_number": visit.visitor_number,
                       "visitor_label": visitor_label(visit.visitor_number, settings.visitor_number_digits)}, headers)


def unavailable(cors: list[tuple[str, str]]) -> Reply:
    """503: Redis did not take the event."""
    return Reply(503, {"error": "event store unavailable; event not recorded, retry later"}, cors)
