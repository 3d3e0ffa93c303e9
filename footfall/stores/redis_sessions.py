"""The Redis side of the request path: active sessions and the event stream, one round trip.

- ``footfall:session:<session id>``: a hash ``{visitor_id, site, started_at_ms, last_seen_ms}`` that
  expires ``FOOTFALL_SESSION_TTL`` seconds after the session's last tracked request.
- ``footfall:events``: a Redis Stream of events waiting for the drain (:mod:`footfall.drain`),
  which writes them to MongoDB; the request path never talks to MongoDB.
- ``footfall:counters``: a hash of counts since the data began (``dropped``, ``failed``,
  ``written``, ``numbers_assigned``, ``numbers_failed``), read by ``/analytics/health``.
- ``footfall:vnum:<site>``: the site's visitor-number allocator, handing out numbers from blocks
  reserved in MongoDB (:mod:`footfall.stores.visitor_numbers`); ``footfall:vn:<site>:<visitor id>``
  caches a visitor's number for the life of the visitor cookie.

- ``footfall:live:<site>…``: the site's live counters (:mod:`footfall.live.counters`).

One Lua script per request (anchors: Snowplow's collector → stream → loader, Plausible's write
buffer) confirms the claimed session (present and owned by the visitor) and slides it, or starts
the fresh one; appends the entry to record, if any; adds the process's count of events it could
not accept while Redis was down; and keeps the site's live counters, announcing a change on the
site's pub/sub channel. Atomic, and one round trip (EVALSHA).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import redis

from footfall.errors import StoreUnavailable
from footfall.live.counters import (
    NOTICE_GATE_MS,
    QUEUE_SCRIPT,
    TRACK_FRAGMENT,
    channel,
    live_keys,
    local_day,
    track_keys_and_args,
)
from footfall.middleware.core import SessionClaim

__all__ = [
    "RedisSessionStore",
    "QueueResult",
    "KEY_PREFIX",
    "STREAM_KEY",
    "COUNTERS_KEY",
    "session_key",
    "number_key",
    "allocator_key",
    "TrackCall",
    "track_call",
    "parse_track_reply",
    "allocator_has_numbers",
    "queue_fields",
    "queue_call",
    "TRACK_SCRIPT",
    "INSTALL_BLOCK_SCRIPT",
    "ALLOCATOR_FIELDS",
]

KEY_PREFIX = "footfall:"
STREAM_KEY = KEY_PREFIX + "events"
COUNTERS_KEY = KEY_PREFIX + "counters"

# KEYS: [1] claimed session key or '', [2] fresh session key, [3] stream, [4] counters,
#       [5] the visitor's number on this site, [6] the site's number allocator
# ARGV: [1] visitor_id, [2] now_ms, [3] ttl_ms, [4] site, [5] payload, [6] '1' when the payload holds
#       a page view, [7] dropped events to add to the counters, [8] claimed session id, [9] fresh id,
#       [10] '1' to number the visitor when no number is known for it on this site ('0' after no block
#       could be reserved), [11] the number its cookie carries for this site or '', [12] visitor TTL in
#       ms, [13] numbering failures to add to the counters, [14] '1' for a new visitor (nothing cached),
#       [15] the low-water mark: with fewer numbers left than this and no block pending, say so
# KEYS 7-14 and ARGV 16-23: the site's live counters (footfall.live.counters.TRACK_FRAGMENT, which
# runs last, before the reply: the visit, page view, visitor new on the site, active set, day,
# country, and a PUBLISH of the change).
# Returns {1 when the claimed session was active else 0, the stream entry id or '', the visitor's
# number or '', 1 when the caller should reserve the next block now (in the background) else 0},
# or {-1, '', '', 0} with nothing done when the visitor needs a number and the
# allocator has no block left: the caller reserves one in MongoDB, installs it, and calls again.
# A visitor needs a number when neither its cookie nor the cache knows one on this site: a new
# visitor, or one new to this site.
TRACK_SCRIPT = """
local num = ARGV[11]
if num == '' and ARGV[14] == '0' then
  num = redis.call('GET', KEYS[5]) or ''
end
local known = num ~= ''
local assigned = 0
local low = 0
if num == '' and ARGV[10] == '1' then
  local a = redis.call('HMGET', KEYS[6], 'next', 'limit', 'pending_next', 'pending_limit')
  local nxt, lim = tonumber(a[1]), tonumber(a[2])
  local pending = a[3]
  if (not nxt or nxt > lim) and pending then
    nxt, lim = tonumber(a[3]), tonumber(a[4])
    redis.call('HSET', KEYS[6], 'limit', a[4])
    redis.call('HDEL', KEYS[6], 'pending_next', 'pending_limit')
    pending = false
  end
  if not nxt or nxt > lim then
    return {-1, '', '', 0}
  end
  redis.call('HSET', KEYS[6], 'next', nxt + 1)
  num = tostring(nxt)
  assigned = 1
  if not pending and lim - nxt < tonumber(ARGV[15]) then
    low = 1
  end
end
if tonumber(ARGV[7]) > 0 then
  redis.call('HINCRBY', KEYS[4], 'dropped', ARGV[7])
end
if tonumber(ARGV[13]) > 0 then
  redis.call('HINCRBY', KEYS[4], 'numbers_failed', ARGV[13])
end
if assigned == 1 then
  redis.call('HINCRBY', KEYS[4], 'numbers_assigned', 1)
end
local active = 0
if KEYS[1] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'visitor_id')
  if owner == ARGV[1] then
    redis.call('HSET', KEYS[1], 'last_seen_ms', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    active = 1
  end
end
local sid = ARGV[8]
if active == 0 then
  sid = ARGV[9]
  redis.call('HSET', KEYS[2], 'visitor_id', ARGV[1], 'site', ARGV[4],
             'started_at_ms', ARGV[2], 'last_seen_ms', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if num ~= '' and (active == 0 or assigned == 1) then
  redis.call('SET', KEYS[5], num, 'PX', ARGV[12])
end
local entry = ''
if active == 0 or ARGV[6] == '1' then
  entry = redis.call('XADD', KEYS[3], '*', 'e', ARGV[5], 'sid', sid, 'new', tostring(1 - active), 'vn', num)
end
""" + TRACK_FRAGMENT + """
return {active, entry, num, low}
"""

# KEYS: [1] the site's number allocator. ARGV: [1] first, [2] last number of a block reserved in
# MongoDB. The block becomes current when the current one is missing or used up, else pending
# (used next) when none is pending; otherwise it is dropped (its numbers are skipped, never reused).
# Returns 1 when installed, 0 when dropped.
INSTALL_BLOCK_SCRIPT = """
local a = redis.call('HMGET', KEYS[1], 'next', 'limit', 'pending_next')
local nxt, lim = tonumber(a[1]), tonumber(a[2])
local first = tonumber(ARGV[1])
if lim and first <= lim then
  return 0
end
if not nxt or nxt > lim then
  redis.call('HSET', KEYS[1], 'next', ARGV[1], 'limit', ARGV[2])
  return 1
end
if not a[3] then
  redis.call('HSET', KEYS[1], 'pending_next', ARGV[1], 'pending_limit', ARGV[2])
  return 1
end
return 0
"""


def number_key(site: str, visitor_id: str) -> str:
    """The Redis key caching a visitor's number on a site (expires with the visitor cookie)."""
    return f"{KEY_PREFIX}vn:{site}:{visitor_id}"


def allocator_key(site: str) -> str:
    """The Redis hash handing out a site's visitor numbers from blocks reserved in MongoDB."""
    return f"{KEY_PREFIX}vnum:{site}"


ALLOCATOR_FIELDS = ("next", "limit", "pending_next")


def session_key(session_id: str) -> str:
    """The Redis key of an active session."""
    return f"{KEY_PREFIX}session:{session_id}"


@dataclass(frozen=True, slots=True)
class QueueResult:
    """The script's answer.

    :ivar session_active: the claimed session was active (same session).
    :ivar entry_id: the stream entry appended, or ``None`` when there was nothing to record.
    :ivar visitor_number: the visitor's number on the site, or ``None``.
    :ivar needs_block: nothing was done: a new visitor needs a number and the site's allocator has
        none left (reserve a block, :meth:`RedisSessionStore.install_block`, and call again).
    :ivar numbers_low: the current block is running out and none is pending: reserve the next one
        now, off the request path, so that no request has to wait for it.
    """

    session_active: bool
    entry_id: str | None
    visitor_number: int | None = None
    needs_block: bool = False
    numbers_low: bool = False


@dataclass(frozen=True, slots=True)
class TrackCall:
    """The keys and arguments of one call of the track script (pure: the sync and async stores
    both send exactly this)."""

    keys: list[str]
    args: list[Any]


def track_call(
    claim: SessionClaim,
    *,
    site: str,
    now: datetime,
    session_ttl: int,
    payload: str,
    has_page_view: bool,
    dropped: int = 0,
    number_new_visitor: bool = True,
    visitor_ttl: int = 365 * 24 * 3600,
    numbers_failed: int = 0,
    low_water: int = 50,
    active_window: int = 300,
    zone: ZoneInfo | None = None,
    location: str = "",
) -> TrackCall:
    """Build the track script's call: decide the session, number the visitor, queue what to record.

    :param claim: from :func:`footfall.middleware.core.claim_session`.
    :param site: the site recorded with a session that starts here.
    :param now: the request's instant (UTC datetime).
    :param session_ttl: seconds a session stays active after its last request.
    :param payload: from :func:`footfall.stores.event_codec.encode_payload`; queued when a
        session starts or ``has_page_view``.
    :param dropped: events this process could not accept earlier, added to the counters.
    :param number_new_visitor: give a visitor with no known number on the site the site's next
        number (``False`` after a block could not be reserved: the visit goes on without one).
    :param visitor_ttl: seconds the visitor's number stays cached (the visitor cookie's life).
    :param numbers_failed: numbering failures of this process to add to the counters.
    :param low_water: with fewer numbers than this left in the block and none pending, the reply
        asks for the next block (half of ``FOOTFALL_VISITOR_NUMBER_BLOCK``).
    :param active_window: seconds after its last request a session stops counting as an active
        visitor (``FOOTFALL_ACTIVE_WINDOW``).
    :param zone: the time zone of the live counters' "today" (``FOOTFALL_TIMEZONE``; UTC when ``None``).
    :param location: ``"<country name>, <CC>"`` of the request, ``""`` when unknown.
    """
    claimed = claim.claimed_session_id or ""
    known = "" if claim.known_number is None else str(claim.known_number)
    live_keys_, live_args = track_keys_and_args(site, claim.visitor_id, now, window=active_window,
                                                zone=zone or ZoneInfo("UTC"), location=location)
    return TrackCall(
        keys=[session_key(claimed) if claimed else "", session_key(claim.fresh_session_id), STREAM_KEY,
              COUNTERS_KEY, number_key(site, claim.visitor_id), allocator_key(site), *live_keys_],
        args=[claim.visitor_id, int(now.timestamp() * 1000), session_ttl * 1000, site, payload,
              "1" if has_page_view else "0", dropped, claimed, claim.fresh_session_id,
              "1" if number_new_visitor else "0", known, visitor_ttl * 1000, numbers_failed,
              "1" if claim.is_new_visitor else "0", low_water, *live_args],
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_track_reply(reply: Sequence[Any]) -> QueueResult:
    """The :class:`QueueResult` of the track script's reply ``[active, entry id, number, low]``."""
    active, entry, number, low = reply
    if int(active) == -1:
        return QueueResult(False, None, None, needs_block=True)
    raw_number = _text(number)
    return QueueResult(int(active) == 1, _text(entry) or None, int(raw_number) if raw_number else None,
                       numbers_low=int(low) == 1)


def allocator_has_numbers(reply: Sequence[Any], *, ahead: bool = False) -> bool:
    """From ``HMGET allocator next limit pending_next``: whether a number is left or, with
    ``ahead``, whether a next block is already pending."""
    nxt, limit, pending = reply
    if ahead:
        return pending is not None
    return pending is not None or (nxt is not None and limit is not None and int(nxt) <= int(limit))


def queue_fields(session_id: str, payload: str, visitor_number: int | None) -> dict[Any, Any]:
    """The stream entry of an event of an already-started session (see :meth:`RedisSessionStore.queue`)."""
    return {"e": payload, "sid": session_id, "new": "0", "vn": "" if visitor_number is None else str(visitor_number)}


def queue_call(
    session_id: str, payload: str, visitor_number: int | None, *, site: str, now: datetime, zone: ZoneInfo | None = None
) -> TrackCall:
    """The call of :data:`~footfall.live.counters.QUEUE_SCRIPT`: queue a page view of an
    already-started session and count it into ``site``'s live counters, in one round trip.

    :param now: the page view's instant (aware UTC datetime).
    :param zone: the time zone of "today" (UTC when ``None``).
    """
    day = local_day(now, zone or ZoneInfo("UTC"))
    keys = live_keys(site, day)
    return TrackCall(keys=[STREAM_KEY, keys.totals, keys.notice],
                     args=[payload, session_id, "" if visitor_number is None else str(visitor_number),
                           int(now.timestamp() * 1000), day.isoformat(), channel(site), NOTICE_GATE_MS])


class RedisSessionStore:
    """Confirms, slides and starts active sessions, numbers visitors and queues events, in Redis.

    A thin shell around the pure call builders above; its asyncio twin is
    :class:`~footfall.stores.async_redis_sessions.AsyncRedisSessionStore`.

    :param client: a redis-py client (see :func:`footfall.stores.connect.redis_client`).
    :param session_ttl: seconds a session stays active after its last request.
    """

    def __init__(self, client: redis.Redis, session_ttl: int) -> None:
        self.client = client
        self.session_ttl = session_ttl
        self._track = client.register_script(TRACK_SCRIPT)
        self._install_block = client.register_script(INSTALL_BLOCK_SCRIPT)
        self._queue = client.register_script(QUEUE_SCRIPT)

    def track(self, claim: SessionClaim, **call: Any) -> QueueResult:
        """Run the track script once (one round trip); ``call`` as for :func:`track_call`.

        :raises StoreUnavailable: Redis did not answer within the socket timeout.
        """
        prepared = track_call(claim, session_ttl=self.session_ttl, **call)
        try:
            return parse_track_reply(self._track(keys=prepared.keys, args=prepared.args))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def install_block(self, site: str, first: int, last: int) -> bool:
        """Hand a block of numbers reserved in MongoDB to the site's allocator.

        :return: ``True`` when it will be used, ``False`` when dropped (another process installed
            blocks first; its numbers are skipped, never handed out).
        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            return int(self._install_block(keys=[allocator_key(site)], args=[first, last])) == 1
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def has_numbers(self, site: str, *, ahead: bool = False) -> bool:
        """Whether the site's allocator has a number left (current or pending block); with
        ``ahead``, whether a next block is already pending.

        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            return allocator_has_numbers(self.client.hmget(allocator_key(site), *ALLOCATOR_FIELDS), ahead=ahead)
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def queue(
        self, session_id: str, payload: str, visitor_number: int | None = None, *, site: str | None = None,
        now: datetime | None = None, zone: ZoneInfo | None = None,
    ) -> str:
        """Append a page view of a known, already-started session (a second round trip: used only for
        server-rendered page views, known after the app answered). With ``site`` and ``now``, the
        same round trip counts it into the site's live counters (:func:`queue_call`).

        :return: the stream entry id.
        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            if site is None or now is None:
                return _text(self.client.xadd(STREAM_KEY, queue_fields(session_id, payload, visitor_number)))
            call = queue_call(session_id, payload, visitor_number, site=site, now=now, zone=zone)
            return _text(self._queue(keys=call.keys, args=call.args))
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc

    def ping(self) -> bool:
        """Whether Redis answers a PING now."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
