"""The marks every raw write leaves for the rollups (issue 11): pure update fragments, no I/O.

The rollups (:mod:`footfall.stores.rollup_build`) are recomputed per site and UTC hour from the raw
collections. Which hours need it is told by the raw documents themselves, in the *same* write that
changes them, so no crash can separate a raw write from its mark:

- a ``sessions`` document keeps ``hours``: every UTC hour (a ``datetime`` at minute 0) that holds its
  start or one of its page views or custom events. A change to the visit (a second page view ends a
  bounce, a new exit page, a custom event) changes what every one of those hours counts for it, so
  all of them are recomputed. It only grows, and a visit spans few hours (it ends 30 idle minutes
  after its last request);
- ``sessions`` and ``visitors`` documents get a fresh ``rollup_dirty`` token (a random string) with
  every write. The rollup builder reads the dirty documents, recomputes their hours, writes the
  rollups, and only then removes the token it read (``{"_id": id, "rollup_dirty": token}``): a write
  that came in between left another token, so that document stays dirty and is recomputed again.

Queries treat the hours of dirty documents as not rolled up yet and read those hours raw, so an
answer is exact whether or not the builder has caught up.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["DIRTY", "HOURS", "ROLLED_FIRST_SEEN", "CLOCK_SKEW", "hour_of", "dirty_token", "token_prefix",
           "session_marks", "session_marks_pipeline", "visitor_marks"]

DIRTY = "rollup_dirty"
HOURS = "hours"
ROLLED_FIRST_SEEN = "rolled_first_seen_hour"  # visitors: the hour under which the builder last counted it


def hour_of(at: datetime) -> datetime:
    """The UTC hour ``at`` falls in, as a timezone-aware datetime at minute 0.

    :param at: a datetime; a naive one is taken as UTC (pymongo returns naive UTC without ``tz_aware``).
    """
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.replace(minute=0, second=0, microsecond=0)


CLOCK_SKEW = 60  # seconds: tokens older than this before a builder's read are cleared in one update


def token_prefix(at: datetime) -> str:
    """The time part of the tokens written at ``at``: nanoseconds since the epoch, 16 hex digits, so
    tokens sort by the time they were written (across servers, within their clocks' skew)."""
    return f"{int(at.timestamp() * 1_000_000_000):016x}"


def dirty_token() -> str:
    """A fresh ``rollup_dirty`` token: the write's time (:func:`token_prefix`, from this server's
    clock: a write's metadata, like a UUIDv7) and 32 random bits, 24 hex digits. The time lets the
    builder clear every mark older than its read, less :data:`CLOCK_SKEW`, in one update."""
    return token_prefix(datetime.now(UTC)) + secrets.token_hex(4)


def _hours(instants: Iterable[datetime]) -> list[datetime]:
    return sorted({hour_of(at) for at in instants})


def session_marks(*instants: datetime) -> dict[str, Any]:
    """Update operators that mark a session write: ``{"$set": {rollup_dirty}, "$addToSet": {hours}}``.

    :param instants: the times the write records (the visit's start, its page views' and events' ``ts``).
    :return: operators to merge into a plain (non-pipeline) update; the caller merges ``$set``.
    """
    return {"$set": {DIRTY: dirty_token()}, "$addToSet": {HOURS: {"$each": _hours(instants)}}}


def session_marks_pipeline(*instants: datetime) -> dict[str, Any]:
    """The same marks as ``$set`` stage fields, for an aggregation-pipeline update.

    :return: ``{"rollup_dirty": token, "hours": {"$setUnion": [...]}}``.
    """
    return {DIRTY: {"$literal": dirty_token()},
            HOURS: {"$setUnion": [{"$ifNull": [f"${HOURS}", []]}, {"$literal": _hours(instants)}]}}


def visitor_marks() -> dict[str, Any]:
    """``$set`` fields that mark a ``visitors`` write (its first-seen hour may have moved)."""
    return {DIRTY: dirty_token()}
