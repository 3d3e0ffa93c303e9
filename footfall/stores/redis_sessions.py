"""The Redis side of the request path: active sessions and the event stream, one round trip.

- ``footfall:session:<session id>``: a hash ``{visitor_id, site, started_at_ms, last_seen_ms}`` that
  expires ``FOOTFALL_SESSION_TTL`` seconds after the session's last tracked request.
- ``footfall:events``: a Redis Stream of events waiting for the drain (:mod:`footfall.drain`),
  which writes them to MongoDB; the request path never talks to MongoDB.
- ``footfall:counters``: a hash of counts since the data began (``dropped``, ``failed``,
  ``written``), read by ``/analytics/health``.

One Lua script per request (anchors: Snowplow's collector → stream → loader, Plausible's write
buffer) confirms the claimed session (present and owned by the visitor) and slides it, or starts
the fresh one; appends the entry to record, if any; and adds the process's count of events it could
not accept while Redis was down. Atomic, and one round trip (EVALSHA).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import redis

from footfall.errors import StoreUnavailable
from footfall.middleware.core import SessionClaim

__all__ = ["RedisSessionStore", "QueueResult", "KEY_PREFIX", "STREAM_KEY", "COUNTERS_KEY", "session_key"]

KEY_PREFIX = "footfall:"
STREAM_KEY = KEY_PREFIX + "events"
COUNTERS_KEY = KEY_PREFIX + "counters"

# KEYS: [1] claimed session key or '', [2] fresh session key, [3] stream, [4] counters
# ARGV: [1] visitor_id, [2] now_ms, [3] ttl_ms, [4] site, [5] payload, [6] '1' when the payload holds
#       a page view, [7] dropped events to add to the counters, [8] claimed session id, [9] fresh id
# Returns {1 when the claimed session was active else 0, the stream entry id or ''}.
_TRACK = """
if tonumber(ARGV[7]) > 0 then
  redis.call('HINCRBY', KEYS[4], 'dropped', ARGV[7])
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
local entry = ''
if active == 0 or ARGV[6] == '1' then
  entry = redis.call('XADD', KEYS[3], '*', 'e', ARGV[5], 'sid', sid, 'new', tostring(1 - active))
end
return {active, entry}
"""


def session_key(session_id: str) -> str:
    """The Redis key of an active session."""
    return f"{KEY_PREFIX}session:{session_id}"


@dataclass(frozen=True, slots=True)
class QueueResult:
    """The script's answer.

    :ivar session_active: the claimed session was active (same session).
    :ivar entry_id: the stream entry appended, or ``None`` when there was nothing to record.
    """

    session_active: bool
    entry_id: str | None


class RedisSessionStore:
    """Confirms, slides and starts active sessions and queues events, in Redis.

    :param client: a redis-py client (see :func:`footfall.stores.connect.redis_client`).
    :param session_ttl: seconds a session stays active after its last request.
    """

    def __init__(self, client: redis.Redis, session_ttl: int) -> None:
        self.client = client
        self._ttl_ms = session_ttl * 1000
        self._track = client.register_script(_TRACK)

    def track(
        self,
        claim: SessionClaim,
        *,
        site: str,
        now: datetime,
        payload: str,
        has_page_view: bool,
        dropped: int = 0,
    ) -> QueueResult:
        """Decide the session and queue what to record, in one round trip.

        :param claim: from :func:`footfall.middleware.core.claim_session`.
        :param site: the site recorded with a session that starts here.
        :param now: the request's instant (UTC datetime).
        :param payload: from :func:`footfall.stores.event_codec.encode_payload`; queued when a
            session starts or ``has_page_view``.
        :param dropped: events this process could not accept earlier, added to the counters.
        :return: the :class:`QueueResult`.
        :raises StoreUnavailable: Redis did not answer within the socket timeout.
        """
        claimed = claim.claimed_session_id or ""
        try:
            active, entry = self._track(
                keys=[session_key(claimed) if claimed else "", session_key(claim.fresh_session_id), STREAM_KEY,
                      COUNTERS_KEY],
                args=[claim.visitor_id, int(now.timestamp() * 1000), self._ttl_ms, site, payload,
                      "1" if has_page_view else "0", dropped, claimed, claim.fresh_session_id],
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        return QueueResult(int(active) == 1, entry_id or None)

    def queue(self, session_id: str, payload: str) -> str:
        """Append an event of a known, already-started session (a second round trip: used only for
        server-rendered page views, known after the app answered).

        :return: the stream entry id.
        :raises StoreUnavailable: Redis did not answer.
        """
        try:
            entry = self.client.xadd(STREAM_KEY, {"e": payload, "sid": session_id, "new": "0"})
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    def ping(self) -> bool:
        """Whether Redis answers a PING now."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
