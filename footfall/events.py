"""What footfall records: the tracked-event body it accepts, and the records it writes.

Pure code: parsing and validating a ``POST /analytics/track`` body, and the frozen records
(:class:`SessionStart`, :class:`PageView`) that the middleware, the log importer and the stores share.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from footfall.errors import InvalidEvent

__all__ = [
    "MAX_BODY_BYTES",
    "EVENT_TYPES",
    "TrackEvent",
    "SessionStart",
    "PageView",
    "parse_track_body",
    "split_page_url",
]

MAX_BODY_BYTES = 16 * 1024  # issue 2: "a body over 16 KiB" is 413
EVENT_TYPES = frozenset({"page_view"})
MAX_PATH_CHARS = 2048
MAX_REFERRER_CHARS = 2048
MAX_TITLE_CHARS = 512
_SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """A validated ``POST /analytics/track`` body.

    :ivar event_type: ``"page_view"``.
    :ivar site: the site it belongs to (``FOOTFALL_DEFAULT_SITE`` when the body names none).
    :ivar path: the page path, always starting with ``/``, without query string or fragment.
    :ivar query: the page's query string without ``?`` (UTM parameters live there), or ``""``.
    :ivar referrer: the page's ``document.referrer`` or ``""``.
    :ivar title: the page title or ``""``.
    :ivar event_id: the client-made UUID that makes retries idempotent, or ``None``.
    """

    event_type: str
    site: str
    path: str
    query: str
    referrer: str
    title: str
    event_id: str | None


@dataclass(frozen=True, slots=True)
class SessionStart:
    """A visit began. Written as the ``sessions`` document with ``_id = session_id``.

    :ivar started_at: UTC datetime of the visit's first request.
    :ivar referrer: the referrer of that first request (``""`` for none).
    """

    session_id: str
    visitor_id: str
    site: str
    started_at: datetime
    referrer: str
    user_agent: str
    visitor_number: int | None = None


@dataclass(frozen=True, slots=True)
class PageView:
    """One page view, written to ``page_views`` with ``_id = event_id`` (so a retry is stored once).

    :ivar ts: UTC datetime of the view.
    :ivar path: page path without query string; ``query`` holds the query string.
    """

    event_id: str
    site: str
    session_id: str
    visitor_id: str
    ts: datetime
    path: str
    query: str
    referrer: str
    title: str
    user_agent: str
    visitor_number: int | None = None


def split_page_url(raw: str) -> tuple[str, str]:
    """Split a tracked page location into ``(path, query)``.

    Accepts a path (``/a/b?x=1``) or an absolute URL (``https://example.com/a?x=1``, what
    ``location.href`` gives); the fragment is dropped. An empty path becomes ``/``.

    :raises InvalidEvent: the value is neither a path nor an http(s) URL.
    """
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https"):
            raise InvalidEvent(f"path must be a path starting with '/' or an http(s) URL, got {raw[:80]!r}")
    elif not raw.startswith("/"):
        raise InvalidEvent(f"path must start with '/', got {raw[:80]!r}")
    return parts.path or "/", parts.query


def _optional_string(body: dict[str, Any], key: str, limit: int) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} must be a string, got {type(value).__name__}")
    if len(value) > limit:
        raise InvalidEvent(f"{key} is {len(value)} characters long; at most {limit} are accepted")
    return value


def parse_track_body(raw: bytes, *, default_site: str) -> TrackEvent:
    """Validate a ``POST /analytics/track`` body.

    The body is a JSON object ``{"eventType": "page_view", "path": "/x", "referrer": "...",
    "title": "...", "site": "...", "event_id": "<uuid>"}``; ``event_type`` is accepted for
    ``eventType`` and ``eventId`` for ``event_id``. Unknown keys are ignored. Any content type is
    read as JSON, because ``navigator.sendBeacon`` sends ``text/plain``.

    :param raw: the request body.
    :param default_site: the site when the body names none (``FOOTFALL_DEFAULT_SITE``).
    :return: the :class:`TrackEvent`.
    :raises InvalidEvent: with status 413 for a body over 16 KiB, else 400 naming the problem:
        malformed JSON, not an object, missing or unknown ``eventType``, missing or non-string
        ``path``, an over-long field, a malformed ``site`` or ``event_id``.
    """
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidEvent(f"body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted", status=413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidEvent(f"body must be a JSON object, got {type(body).__name__}")

    event_type = body.get("eventType", body.get("event_type"))
    if event_type is None:
        raise InvalidEvent("eventType is required")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        raise InvalidEvent(f"unknown eventType {event_type!r}; accepted: {', '.join(sorted(EVENT_TYPES))}")

    raw_path = body.get("path")
    if raw_path is None:
        raise InvalidEvent("path is required")
    if not isinstance(raw_path, str):
        raise InvalidEvent(f"path must be a string, got {type(raw_path).__name__}")
    if not raw_path or len(raw_path) > MAX_PATH_CHARS:
        raise InvalidEvent(f"path must be 1 to {MAX_PATH_CHARS} characters, got {len(raw_path)}")
    path, query = split_page_url(raw_path)

    site = body.get("site")
    if site is None:
        site = default_site
    elif not isinstance(site, str) or not _SITE_RE.match(site):
        raise InvalidEvent(
            f"site must be 1-100 characters of letters, digits and . _ : - starting with a letter or "
            f"digit, got {str(site)[:80]!r}"
        )

    event_id = body.get("event_id", body.get("eventId"))
    if event_id is not None:
        if not isinstance(event_id, str):
            raise InvalidEvent(f"event_id must be a UUID string, got {type(event_id).__name__}")
        try:
            event_id = str(uuid.UUID(event_id))
        except ValueError:
            raise InvalidEvent(f"event_id must be a UUID, got {event_id[:80]!r}") from None

    return TrackEvent(
        event_type=event_type,
        site=site,
        path=path,
        query=query,
        referrer=_optional_string(body, "referrer", MAX_REFERRER_CHARS),
        title=_optional_string(body, "title", MAX_TITLE_CHARS),
        event_id=event_id,
    )
