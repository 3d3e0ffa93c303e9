"""Encoding of queued events for the Redis Stream, and decoding them back into records: pure code.

A tracked request that has something to record (a visit that starts, a page view, or both) appends
one stream entry in the same Redis round trip that decides its case (see
:mod:`footfall.stores.redis_sessions`). Python does not know yet which session id the request will
get (the Lua script decides, atomically), so the entry holds:

- ``e``: a JSON payload written here, with everything but the session id;
- ``sid``: the session id the script chose;
- ``new``: ``"1"`` when the script started that session, else ``"0"``;
- ``vn``: the visitor's number on the site, or ``""``.

:func:`decode_entry` turns an entry back into a :class:`~footfall.events.SessionStart` (when
``new``) and/or a :class:`~footfall.events.PageView` or :class:`~footfall.events.CustomEvent`
(the payload's ``page_view`` with ``type: "custom"``); anything malformed raises
:class:`EntryError` so the drain can count it and set it aside without losing the rest of its batch.

The payload's keys are listed in ``docs/data-model.md``. Keys added after version 1 was first
queued (``host``, ``country``, ``city``; ``page_view.route``, ``.type``, ``.name``, ``.props``)
decode as their defaults when absent, so entries queued by an older version still drain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from footfall.errors import InvalidEvent
from footfall.events import CustomEvent, PageView, SessionStart, check_event_name, check_props, check_unicode

__all__ = ["FORMAT_VERSION", "EntryError", "QueuedRecords", "PageViewFields", "encode_payload", "decode_entry"]

PageViewFields = dict[str, Any]  # the payload's page_view object (see tracker.page_view_fields)

FORMAT_VERSION = 1


class EntryError(ValueError):
    """A stream entry that cannot be decoded; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class QueuedRecords:
    """What one stream entry records: a visit start, and/or one page view or one custom event."""

    session_start: SessionStart | None
    page_view: PageView | None
    custom_event: CustomEvent | None = None


def encode_payload(
    *,
    site: str,
    visitor_id: str,
    at: datetime,
    referrer: str,
    user_agent: str,
    page_view: PageViewFields | None,
    host: str = "",
    country: str | None = None,
    city: str | None = None,
) -> str:
    """The ``e`` field of a stream entry.

    :param site: the site a visit that starts here belongs to.
    :param visitor_id: the request's visitor.
    :param at: the request's instant (UTC datetime), stored as integer milliseconds.
    :param referrer: the referrer recorded with a visit that starts here.
    :param user_agent: the request's User-Agent.
    :param page_view: ``{"event_id", "site", "path", "query", "referrer", "title"}`` plus optional
        ``route`` and ``type`` (``"page_view"`` or ``"custom"``, which adds ``name`` and ``props``),
        or ``None`` (see :func:`footfall.middleware.tracker.page_view_fields`).
    :param host: the request's own host (lowercase, no port) or ``""``.
    :param country: ISO 3166-1 alpha-2 code from the client IP, or ``None``; ``city`` likewise.
    :return: compact JSON.
    """
    return json.dumps(
        {"v": FORMAT_VERSION, "site": site, "visitor_id": visitor_id, "ts": int(at.timestamp() * 1000),
         "referrer": referrer, "user_agent": user_agent, "host": host, "country": country, "city": city,
         "page_view": page_view},
        separators=(",", ":"),
    )


def _text(fields: dict[str, Any], key: str) -> str:
    value = fields.get(key)
    if not isinstance(value, str):
        raise EntryError(f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def _optional_text(fields: dict[str, Any], key: str, default: str | None = None) -> str | None:
    value = fields.get(key, default)
    if value is not None and not isinstance(value, str):
        raise EntryError(f"field {key!r} must be a string or null, got {type(value).__name__}")
    return value


def _field(raw: dict[Any, Any], key: str) -> str:
    value = raw.get(key, raw.get(key.encode()))
    if value is None:
        raise EntryError(f"entry has no {key!r} field")
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def decode_entry(raw: dict[Any, Any]) -> QueuedRecords:
    """Decode a stream entry's fields (bytes or str keys and values).

    :return: the :class:`QueuedRecords`.
    :raises EntryError: a missing field, malformed JSON, an unknown format version or a field of
        the wrong type (the message names it).
    """
    try:
        payload = json.loads(_field(raw, "e"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise EntryError(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise EntryError("payload is not a JSON object")
    try:
        check_unicode(payload, "payload")
    except InvalidEvent as exc:  # it could never be written: set it aside rather than stall the drain
        raise EntryError(exc.message) from None
    if payload.get("v") != FORMAT_VERSION:
        raise EntryError(f"unknown format version {payload.get('v')!r}")
    session_id = _field(raw, "sid")
    is_new = _field(raw, "new") == "1"
    raw_number = raw.get("vn", raw.get(b"vn")) or b""
    raw_number = raw_number.decode() if isinstance(raw_number, bytes) else str(raw_number)
    if raw_number and not raw_number.isdigit():
        raise EntryError(f"vn must be a visitor number, got {raw_number[:20]!r}")
    number = int(raw_number) if raw_number else None
    ts_ms = payload.get("ts")
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
        raise EntryError(f"ts must be integer milliseconds, got {ts_ms!r}")
    at = datetime.fromtimestamp(ts_ms / 1000, tz=UTC)
    visitor_id = _text(payload, "visitor_id")
    user_agent = _text(payload, "user_agent")
    host = _optional_text(payload, "host", "") or ""
    country = _optional_text(payload, "country")
    city = _optional_text(payload, "city")
    facts: dict[str, Any] = {"host": host, "country": country, "city": city}

    start = None
    if is_new:
        start = SessionStart(session_id, visitor_id, _text(payload, "site"), at, _text(payload, "referrer"),
                             user_agent, number, **facts)
    view = event = None
    raw_view = payload.get("page_view")
    if raw_view is not None:
        if not isinstance(raw_view, dict):
            raise EntryError("page_view must be an object")
        kind = raw_view.get("type", "page_view")
        common: dict[str, Any] = {"event_id": _text(raw_view, "event_id"), "site": _text(raw_view, "site"),
                  "session_id": session_id, "visitor_id": visitor_id, "ts": at, "path": _text(raw_view, "path"),
                  "route": _optional_text(raw_view, "route"), "referrer": _text(raw_view, "referrer"),
                  "user_agent": user_agent, "visitor_number": number, **facts}
        if kind == "page_view":
            view = PageView(query=_text(raw_view, "query"), title=_text(raw_view, "title"), **common)
        elif kind == "custom":
            try:
                name, props = check_event_name(raw_view.get("name")), check_props(raw_view.get("props"))
            except InvalidEvent as exc:
                raise EntryError(f"custom event: {exc.message}") from None
            event = CustomEvent(name=name, props=props, **common)
        else:
            raise EntryError(f"page_view.type must be 'page_view' or 'custom', got {kind!r}")
    if start is None and view is None and event is None:
        raise EntryError("entry records neither a visit start nor a page view nor a custom event")
    return QueuedRecords(start, view, event)
