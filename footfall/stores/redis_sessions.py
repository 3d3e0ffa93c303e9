"""The Redis active-session store: one key per active session, TTL = the session TTL.

Key ``footfall:session:<session id>`` is a hash ``{visitor_id, site, started_at_ms, last_seen_ms}``
that expires ``FOOTFALL_SESSION_TTL`` seconds after the session's last tracked request. A request
costs one round trip: a Lua script confirms the claimed session (present and owned by the visitor)
and slides it, or else starts the fresh session, atomically.
"""

from __future__ import annotations

from datetime import datetime

import redis

from footfall.errors import StoreUnavailable
from footfall.middleware.core import SessionClaim

__all__ = ["RedisSessionStore", "KEY_PREFIX", "session_key"]

KEY_PREFIX = "footfall:"

# KEYS[1] claimed session key ('' for none), KEYS[2] fresh session key
# ARGV: visitor_id, now_ms, ttl_ms, site
# Returns 1 when the claimed session was active for this visitor (and was slid), 0 when the fresh
# session was started instead.
_SLIDE_OR_START = """
if KEYS[1] ~= '' then
  local owner = redis.call('HGET', KEYS[1], 'visitor_id')
  if owner == ARGV[1] then
    redis.call('HSET', KEYS[1], 'last_seen_ms', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
end
redis.call('HSET', KEYS[2], 'visitor_id', ARGV[1], 'site', ARGV[4],
           'started_at_ms', ARGV[2], 'last_seen_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 0
"""


def session_key(session_id: str) -> str:
    """The Redis key of an active session."""
    return f"{KEY_PREFIX}session:{session_id}"


class RedisSessionStore:
    """Confirms, slides and starts active sessions in Redis.

    :param client: a redis-py client (see :func:`footfall.stores.connect.redis_client`).
    :param session_ttl: seconds a session stays active after its last request.
    """

    def __init__(self, client: redis.Redis, session_ttl: int) -> None:
        self.client = client
        self._ttl_ms = session_ttl * 1000
        self._script = client.register_script(_SLIDE_OR_START)

    def slide_or_start(self, claim: SessionClaim, *, site: str, now: datetime) -> bool:
        """Slide the claimed session if it is active for ``claim.visitor_id``, else start
        ``claim.fresh_session_id``; one round trip (EVALSHA).

        :param claim: from :func:`footfall.middleware.core.claim_session`.
        :param site: the site recorded with a session that starts here.
        :param now: the request's instant (UTC datetime).
        :return: ``True`` when the claimed session was active (same session), else ``False``.
        :raises StoreUnavailable: Redis did not answer within the socket timeout.
        """
        claimed = session_key(claim.claimed_session_id) if claim.claimed_session_id else ""
        try:
            result = self._script(
                keys=[claimed, session_key(claim.fresh_session_id)],
                args=[claim.visitor_id, int(now.timestamp() * 1000), self._ttl_ms, site],
            )
        except redis.RedisError as exc:
            raise StoreUnavailable(f"Redis did not answer: {exc}") from exc
        return int(result) == 1

    def ping(self) -> bool:
        """Whether Redis answers a PING now."""
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
