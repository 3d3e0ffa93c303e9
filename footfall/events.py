"""What footfall records: the tracked-event body it accepts, and the records it writes.

Pure code: parsing and validating a ``POST /analytics/track`` body, and the frozen records
(:class:`SessionStart`, :class:`PageView`, :class:`CustomEvent`) that the middleware, the log
importer and the stores share. Field names and limits follow ``docs/data-model.md``.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from footfall.errors import InvalidEvent

__all__ = [
    "MAX_BODY_BYTES",
    "EVENT_TYPES",
    "PropValue",
    "TrackEvent",
    "SessionStart",
    "PageView",
    "CustomEvent",
    "check_event_name",
    "check_props",
    "check_unicode",
    "parse_track_body",
    "json_object_body",
    "split_page_url",
]

MAX_BODY_BYTES = 16 * 1024  # issue 2: "a body over 16 KiB" is 413
EVENT_TYPES = frozenset({"page_view", "custom"})  # the stream's page_view.type; any other eventType is custom
MAX_PATH_CHARS = 2048
MAX_REFERRER_CHARS = 2048
MAX_TITLE_CHARS = 512
MAX_EVENT_NAME_CHARS = 120  # docs/data-model.md: custom event name, 1..120 characters
MAX_PROPS = 30  # docs/data-model.md: props, at most 30 keys
MAX_PROP_KEY_CHARS = 64  # of 1..64 characters
MAX_PROP_VALUE_CHARS = 512  # string values of at most 512 characters
_INT64 = 2**63  # BSON stores integers in 64 bits; a larger one could not be written
PropValue = str | int | float
_SITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")


@dataclass(frozen=True, slots=True)
class TrackEvent:
    """A validated ``POST /analytics/track`` body.

    :ivar event_type: ``"page_view"`` or ``"custom"`` (any other ``eventType`` of the body).
    :ivar site: the site it belongs to (``FOOTFALL_DEFAULT_SITE`` when the body names none).
    :ivar path: the page path, always starting with ``/``, without query string or fragment.
    :ivar query: the page's query string without ``?`` (UTM parameters live there), or ``""``.
    :ivar referrer: the page's ``document.referrer`` or ``""``.
    :ivar title: the page title or ``""``.
    :ivar event_id: the client-made UUID that makes retries idempotent, or ``None``.
    :ivar name: a custom event's name (1..120 characters); ``None`` for a page view.
    :ivar props: a custom event's properties (flat: string or finite-number values); empty for a
        page view.
    """

    event_type: str
    site: str
    path: str
    query: str
    referrer: str
    title: str
    event_id: str | None
    name: str | None = None
    props: dict[str, PropValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionStart:
    """A visit began. Written as the ``sessions`` document with ``_id = session_id``.

    :ivar started_at: UTC datetime of the visit's first request.
    :ivar referrer: the referrer of that first request (``""`` for none).
    :ivar host: that request's own host (lowercase, no port) or ``""``: tells a same-site referrer.
    :ivar country: ISO 3166-1 alpha-2 code (uppercase) resolved from the client IP, or ``None``.
    :ivar city: a city name resolved from the client IP, or ``None``.
    """

    session_id: str
    visitor_id: str
    site: str
    started_at: datetime
    referrer: str
    user_agent: str
    visitor_number: int | None = None
    host: str = ""
    country: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class PageView:
    """One page view, written to ``page_views`` with ``_id = event_id`` (so a retry is stored once).

    :ivar ts: UTC datetime of the view.
    :ivar path: page path without query string; ``query`` holds the query string.
    :ivar route: the matched route template (``/users/<id>``), or ``None`` when the app has none.
    :ivar host, country, city: of the request that sent the view, as in :class:`SessionStart`.
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
    route: str | None = None
    host: str = ""
    country: str | None = None
    city: str | None = None


@dataclass(frozen=True, slots=True)
class CustomEvent:
    """One custom event (``signup``, ``add_to_cart``), written to ``custom_events`` with
    ``_id = event_id`` (so a retry is stored once) and counted into its visit's ``events``.

    :ivar ts: UTC datetime of the event.
    :ivar name: 1..120 characters (:func:`check_event_name`).
    :ivar props: flat properties (:func:`check_props`).
    :ivar path: the page the event happened on; ``route`` its route template or ``None``.
    :ivar referrer, user_agent, host, country, city: of the request that sent it, as in
        :class:`PageView`.
    """

    event_id: str
    site: str
    session_id: str
    visitor_id: str
    ts: datetime
    name: str
    props: dict[str, PropValue]
    path: str
    route: str | None = None
    visitor_number: int | None = None
    referrer: str = ""
    user_agent: str = ""
    host: str = ""
    country: str | None = None
    city: str | None = None


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


def check_event_name(value: object, key: str = "name") -> str:
    """Validate a custom event's name: a string of 1..120 characters (``docs/data-model.md``).

    :param value: the candidate name.
    :param key: the body key it came from, for the message.
    :return: the name, unchanged.
    :raises InvalidEvent: (400) naming ``key``: not a string, empty or too long.
    """
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} must be a string, got {type(value).__name__}")
    if not value or len(value) > MAX_EVENT_NAME_CHARS:
        raise InvalidEvent(f"{key} must be 1 to {MAX_EVENT_NAME_CHARS} characters, got {len(value)}")
    return value


def check_props(value: object) -> dict[str, PropValue]:
    """Validate a custom event's ``props``: a flat JSON object (``docs/data-model.md``).

    At most 30 keys of 1..64 characters; each value a string of at most 512 characters or a finite
    number (booleans, ``null``, arrays and objects are refused; an integer must fit in 64 bits,
    since BSON stores no larger one). ``None`` means no properties.

    :param value: the decoded JSON value.
    :return: the properties as a new ``dict`` (empty for ``None``).
    :raises InvalidEvent: (400) naming the offending key and what is wrong with it.
    """
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"props must be an object, got {type(value).__name__}")
    if len(value) > MAX_PROPS:
        raise InvalidEvent(f"props has {len(value)} keys; at most {MAX_PROPS} are accepted")
    props: dict[str, PropValue] = {}
    for key, item in value.items():
        if not 1 <= len(key) <= MAX_PROP_KEY_CHARS:
            raise InvalidEvent(f"props key {key[:80]!r} must be 1 to {MAX_PROP_KEY_CHARS} characters, got {len(key)}")
        if "\x00" in key:  # BSON cannot store a field name holding NUL
            raise InvalidEvent(f"props key {key!r} must not contain a NUL character")
        if isinstance(item, str):
            if len(item) > MAX_PROP_VALUE_CHARS:
                raise InvalidEvent(f"props[{key!r}] is {len(item)} characters long; at most "
                                   f"{MAX_PROP_VALUE_CHARS} are accepted")
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidEvent(f"props[{key!r}] must be a string or a number, got {_json_type(item)}")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidEvent(f"props[{key!r}] must be a finite number, got {item}")
        elif isinstance(item, int) and not -_INT64 <= item < _INT64:
            raise InvalidEvent(f"props[{key!r}] is out of the 64-bit integer range")
        props[key] = item
    return props


def check_unicode(value: object, what: str) -> None:
    """Refuse a decoded JSON value holding an unpaired UTF-16 surrogate (``"\\ud800"`` is valid JSON,
    but no UTF-8 string, so MongoDB could not store it).

    :param value: the decoded JSON value (keys and strings at any depth are checked).
    :param what: what it is, for the message (``"body"``).
    :raises InvalidEvent: (400) the value holds one.
    """
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(f"{what} holds an unpaired UTF-16 surrogate escape; strings must be valid Unicode") from None


def _json_type(value: object) -> str:
    return {bool: "boolean", type(None): "null", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def json_object_body(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object of at most 16 KiB (the track and register
    endpoints' bodies), with no unpaired surrogate anywhere in it (it could not be stored).

    :raises InvalidEvent: 413 for a body over 16 KiB, else 400: malformed JSON, not an object, or a
        string holding an unpaired surrogate (the message says which).
    """
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidEvent(f"body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted", status=413)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidEvent(f"body must be a JSON object, got {type(body).__name__}")
    check_unicode(body, "body")
    return body


def parse_track_body(raw: bytes, *, default_site: str) -> TrackEvent:
    """Validate a ``POST /analytics/track`` body.

    The body is a JSON object ``{"eventType": "page_view", "path": "/x", "referrer": "...",
    "title": "...", "site": "...", "event_id": "<uuid>"}``; ``event_type`` is accepted for
    ``eventType`` and ``eventId`` for ``event_id``. Unknown keys are ignored. Any content type is
    read as JSON, because ``navigator.sendBeacon`` sends ``text/plain``.

    Any ``eventType`` other than ``page_view`` is a custom event, named by the body's ``name`` when
    given, else by the ``eventType`` itself: ``{"eventType": "signup"}`` and ``{"eventType": "custom",
    "name": "signup"}`` are the same event. Its ``props`` (optional) are checked by
    :func:`check_props`; ``path`` is still required (the page the event happened on). A page view
    ignores ``name`` and ``props``.

    :param raw: the request body.
    :param default_site: the site when the body names none (``FOOTFALL_DEFAULT_SITE``).
    :return: the :class:`TrackEvent`.
    :raises InvalidEvent: with status 413 for a body over 16 KiB, else 400 naming the problem:
        malformed JSON, not an object, a missing, non-string, empty or over-long ``eventType``, a bad
        custom event ``name`` or ``props`` (naming the key), missing or non-string ``path``, an
        over-long field, a malformed ``site`` or ``event_id``.
    """
    body = json_object_body(raw)

    event_type = body.get("eventType", body.get("event_type"))
    if event_type is None:
        raise InvalidEvent("eventType is required")
    if not isinstance(event_type, str):
        raise InvalidEvent(f"eventType must be a string: 'page_view' or a custom event name, got "
                           f"{_json_type(event_type)}")
    if not event_type:
        raise InvalidEvent("eventType must not be empty: 'page_view' or a custom event name")
    name: str | None = None
    props: dict[str, PropValue] = {}
    if event_type != "page_view":
        given = body.get("name")
        name = check_event_name(event_type, "eventType") if given is None else check_event_name(given)
        props = check_props(body.get("props"))
        event_type = "custom"

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
        name=name,
        props=props,
    )
