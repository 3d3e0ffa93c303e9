"""The live messages and their Server-Sent Events framing (pure code; the WHATWG HTML standard,
"Server-sent events", defines the format: ``id:``, ``event:``, ``data:`` and ``retry:`` fields, and
lines starting with ``:`` as comments that keep a connection alive).

A message is the seed's WebSocket shape, ``{"type": "visitor_update", "stats": {…}}``, sent as the
``data`` of an SSE ``visitor_update`` event (listen with ``addEventListener("visitor_update", …)``)
or as one WebSocket text frame.

Resume: every message carries the state's id, ``"<generation>-<seq>"``
(:attr:`~footfall.live.counters.CounterSnapshot.event_id`), as its SSE ``id:``. A message is the
whole state, not a change, so a client that reconnects with ``Last-Event-ID`` misses nothing by
getting the latest state once: when its id equals the current one it already has it and nothing is
sent until the next change; any other id (older, from before Redis lost its counters, or malformed)
gets the current state at once. Without ``Last-Event-ID`` the current state is the first message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["LiveMessage", "visitor_update", "event_frame", "retry_frame", "HEARTBEAT", "needs_catch_up",
           "EVENT_NAME"]

EVENT_NAME = "visitor_update"
HEARTBEAT = b": ping\n\n"  # a comment line: ignored by EventSource, keeps proxies from closing an idle stream


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One state of a site's numbers.

    :ivar event_id: the SSE id (``"<since_ms>-<seq>"``).
    :ivar order: ``(since_ms, seq)``, to tell an older state from a newer one.
    :ivar stats: the stats object (:func:`~footfall.live.counters.build_stats`).
    """

    event_id: str
    order: tuple[int, int]
    stats: dict[str, Any]
    text: str = ""  # the JSON, made once for every stream that sends it (see :meth:`of`)

    @classmethod
    def of(cls, event_id: str, order: tuple[int, int], stats: dict[str, Any]) -> LiveMessage:
        """A message with its JSON text made once."""
        return cls(event_id, order, stats, json.dumps(visitor_update(stats), separators=(",", ":")))

    def payload(self) -> str:
        """The message as JSON text, ``{"type": "visitor_update", "stats": {…}}`` (one line)."""
        return self.text or json.dumps(visitor_update(self.stats), separators=(",", ":"))


def visitor_update(stats: dict[str, Any]) -> dict[str, Any]:
    """The seed's message shape around a stats object."""
    return {"type": EVENT_NAME, "stats": stats}


def event_frame(message: LiveMessage) -> bytes:
    """The SSE frame of ``message``: ``id:``, ``event: visitor_update``, ``data:`` (JSON never holds a
    raw newline, so one ``data:`` line is the whole of it)."""
    return f"id: {message.event_id}\nevent: {EVENT_NAME}\ndata: {message.payload()}\n\n".encode()


def retry_frame(milliseconds: int) -> bytes:
    """An SSE ``retry:`` field: how long a browser waits before reconnecting a dropped stream."""
    return f"retry: {int(milliseconds)}\n\n".encode()


def needs_catch_up(last_event_id: str | None, current: LiveMessage) -> bool:
    """Whether a (re)connecting client must get ``current`` now (see the module docstring)."""
    return last_event_id is None or last_event_id.strip() != current.event_id
