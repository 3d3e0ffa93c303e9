"""``POST /api/visitor/register``: its body, validated, and the page view it records (pure code).

The body is the seed's (``shared/seeds/001_c05ca85c54535c0d.txt``)::

    {"visitorId": "visitor_1702757318000_a1b2c3d4e", "timestamp": 1702757318000,
     "userAgent": "Mozilla/5.0 ...", "referrer": "https://google.com" or "direct"}

``visitorId``, ``timestamp`` and ``userAgent`` are informational only: a client can write anything
there, so identity comes from footfall's signed cookies, time from the server's clock and the
User-Agent from the request's own header. ``referrer`` is the page's ``document.referrer``, what
``/analytics/track``'s ``referrer`` is: it is recorded (``"direct"`` as none).

What a register records: a page view, through the same tracker and the same single Lua round trip as
``/analytics/track`` (so a visit starts when the visitor has no active session, which is what makes
"4001 visits" tick to 4002). The page is the path of the request's own ``Referer`` header, the page
that sent the register (browsers send only its origin to another origin, by the default
``strict-origin-when-cross-origin`` policy: the page is then ``/``), and ``/`` when there is none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from footfall.errors import InvalidEvent
from footfall.events import MAX_PATH_CHARS, MAX_REFERRER_CHARS, json_object_body

__all__ = ["RegisterBody", "parse_register_body", "page_of_referer", "DIRECT"]

DIRECT = "direct"  # the seed's referrer for "no referrer"
MAX_VISITOR_ID_CHARS = 128
MAX_USER_AGENT_CHARS = 1024


@dataclass(frozen=True, slots=True)
class RegisterBody:
    """A validated register body.

    :ivar visitor_id: the client's own id (informational: identity is the signed cookie).
    :ivar timestamp: the client's clock, UNIX ms (informational: the server's clock is recorded).
    :ivar user_agent: as the client says (informational: the request header is recorded).
    :ivar referrer: the page's referrer, ``""`` for none (``"direct"``).
    """

    visitor_id: str
    timestamp: float
    user_agent: str
    referrer: str


def _string(body: dict[str, Any], key: str, limit: int, *, required: bool) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise InvalidEvent(f"{key} is required")
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(f"{key} must be a string, got {type(value).__name__}")
    if len(value) > limit or (required and not value):
        raise InvalidEvent(f"{key} must be 1 to {limit} characters, got {len(value)}")
    return value


def parse_register_body(raw: bytes) -> RegisterBody:
    """Validate a register body (any content type is read as JSON, as ``/analytics/track`` does).

    :param raw: the request body.
    :return: the :class:`RegisterBody`.
    :raises InvalidEvent: 413 for a body over 16 KiB, else 400 naming the problem: malformed JSON,
        not an object, ``visitorId`` missing or not a 1-128 character string, ``timestamp`` missing
        or not a finite non-negative number (UNIX ms), ``userAgent`` or ``referrer`` not a string or
        over-long. Unknown keys are ignored.
    """
    body = json_object_body(raw)
    visitor_id = _string(body, "visitorId", MAX_VISITOR_ID_CHARS, required=True)
    timestamp = body.get("timestamp")
    if timestamp is None:
        raise InvalidEvent("timestamp is required (UNIX milliseconds)")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise InvalidEvent(f"timestamp must be a number of UNIX milliseconds, got {type(timestamp).__name__}")
    if not math.isfinite(timestamp) or timestamp < 0:
        raise InvalidEvent(f"timestamp must be a non-negative number of UNIX milliseconds, got {timestamp!r}")
    referrer = _string(body, "referrer", MAX_REFERRER_CHARS, required=False)
    return RegisterBody(visitor_id=visitor_id, timestamp=float(timestamp),
                        user_agent=_string(body, "userAgent", MAX_USER_AGENT_CHARS, required=False),
                        referrer="" if referrer.strip().lower() == DIRECT else referrer)


def page_of_referer(referer: str | None) -> str:
    """The page a register came from: the path of the request's ``Referer`` header when it is an
    http(s) URL, else ``/`` (see the module docstring)."""
    if not referer:
        return "/"
    parts = urlsplit(referer)
    if parts.scheme not in ("http", "https") or not parts.path.startswith("/"):
        return "/"
    return parts.path[:MAX_PATH_CHARS]
