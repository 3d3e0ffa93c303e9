"""``POST /analytics/track``, its preflight, and ``GET /analytics/footfall.js`` (the tracker script),
as pure steps shared by the WSGI and ASGI adapters.

Each step returns either what the next step needs or a :class:`Reply` to send; the adapters only
read the body, await or call the tracker, and turn the :class:`Reply` into their own response.

Statuses (all with a JSON body, issue 2):

- 200 ``{"status": "recorded", "visitor_number", "visitor_label"}``, or ``{"status": "ignored"}``
  for a crawler;
- 204: an allowed CORS preflight; an event from a request with ``Sec-GPC: 1`` while
  ``FOOTFALL_RESPECT_GPC`` is on (nothing recorded, no cookies, no body);
- 400: malformed JSON, missing/empty ``eventType``, a custom event's bad ``name`` or ``props`` (naming the
  key), bad ``path``, malformed ``Content-Length``;
- 403: a preflight from an origin not in ``FOOTFALL_CORS_ORIGINS``;
- 405: a method other than ``POST`` or ``OPTIONS``;
- 413: a body over 16 KiB;
- 503: Redis did not take the event (counted as dropped; retry with the same ``event_id``).

The script (:func:`script`) answers ``GET``/``HEAD`` with 200 or, for a matching ``If-None-Match``,
304; any other method is 405.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from werkzeug.http import parse_etags, unquote_etag

from footfall.errors import InvalidEvent
from footfall.events import MAX_BODY_BYTES, TrackEvent, parse_track_body
from footfall.middleware.cookies import CookieCodec
from footfall.middleware.core import Visit
from footfall.middleware.cors import cors_headers, preflight_headers
from footfall.middleware.script import baked_script
from footfall.middleware.tracker import RequestFacts, host_of
from footfall.settings import Settings
from footfall.stores.visitor_numbers import visitor_label

__all__ = ["Reply", "opening", "event_of", "body_limit", "recorded", "unavailable", "script", "IGNORED_CRAWLER",
           "SCRIPT_CACHE_CONTROL"]

IGNORED_CRAWLER = {"status": "ignored", "reason": "crawler or missing User-Agent"}
SCRIPT_CACHE_CONTROL = "public, max-age=3600"  # an hour: a new release or setting reaches browsers within one


@dataclass(frozen=True)
class Reply:
    """An answer to send: status, JSON body (``None`` for none) and headers; or, for the script,
    ``content`` sent as it is, its ``Content-Type`` among ``headers``."""

    status: int
    body: Mapping[str, object] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None

    def encoded(self) -> bytes:
        """The body as bytes (empty without a body)."""
        if self.content is not None:
            return self.content
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


def event_of(body: bytes, settings: Settings, cors: list[tuple[str, str]], sec_gpc: str | None = None
             ) -> TrackEvent | Reply:
    """The validated event, or the :class:`Reply` to send instead: 400/413 saying what was wrong, or
    204 (recording nothing) when ``FOOTFALL_RESPECT_GPC`` is on and the request's ``Sec-GPC`` header
    is ``1`` (Global Privacy Control, https://privacycg.github.io/gpc-spec/ section 3).

    :param sec_gpc: the request's ``Sec-GPC`` header, ``None`` when absent.
    """
    if settings.respect_gpc and (sec_gpc or "").strip() == "1":
        return Reply(204, None, cors)
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


def script(method: str, if_none_match: str | None, settings: Settings) -> Reply:
    """``GET``/``HEAD /analytics/footfall.js``: the tracker script with the settings baked in
    (:mod:`footfall.middleware.script`).

    Cacheable by anyone for an hour, with an ``ETag`` for revalidation; readable from any origin
    (``Access-Control-Allow-Origin: *``: it is public and fetched without credentials, so
    ``<script crossorigin>`` works) and loadable by pages that require CORP.

    :param method: the request method.
    :param if_none_match: the ``If-None-Match`` header or ``None``.
    :return: 200 with the script (a ``HEAD`` answer's adapter sends no body), 304 when
        ``If-None-Match`` matches (weak comparison, RFC 9110 13.1.2), 405 for another method.
    """
    if method not in ("GET", "HEAD"):
        return Reply(405, {"error": f"{method} is not allowed here; GET the script"}, [("Allow", "GET, HEAD")])
    served = baked_script(settings)
    headers = [("Cache-Control", SCRIPT_CACHE_CONTROL), ("ETag", served.etag),
               ("Access-Control-Allow-Origin", "*"), ("Cross-Origin-Resource-Policy", "cross-origin")]
    if if_none_match and parse_etags(if_none_match).contains_weak(unquote_etag(served.etag)[0]):
        return Reply(304, None, headers)
    return Reply(200, None, [("Content-Type", "text/javascript; charset=utf-8"), *headers], content=served.content)
