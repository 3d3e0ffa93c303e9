"""The live counters: Redis keys, the Lua that keeps them, and the stats object built from them.

Pure code, no I/O. The counters are kept by the request's own track script
(:data:`footfall.stores.redis_sessions.TRACK_SCRIPT` runs :data:`TRACK_FRAGMENT` in the same single
round trip), so reading them never scans sessions: ``GET /api/stats`` is a fixed set of O(1) and
O(log n) Redis commands (:func:`queue_snapshot_read`), whatever the number of stored sessions.

Keys, per site ``S`` (``footfall:live:S`` is also the site's pub/sub channel):

- ``footfall:live:S``: a hash of totals since the data began: ``visits`` (visit starts),
  ``page_views``, ``unique_visitors`` (visitors new on the site), plus ``seq`` (the per-site change
  sequence, the SSE ``id:``), ``updated_ms`` (the last change), ``day`` (its local day),
  ``since_ms`` (the first change this hash counted: the counters' generation, set once) and
  ``seeded_ms`` (when what MongoDB held before ``since_ms`` was added, see :mod:`footfall.live.rebuild`);
- ``footfall:live:S:active``: a sorted set, session id → last activity (ms). Active visitors are
  the members scored inside the window (``ZCOUNT``, O(log n)); members that left it are trimmed
  (``ZREMRANGEBYSCORE``) at every visit start and by the live hub's sweep;
- ``footfall:live:S:day:<YYYY-MM-DD>``: a hash ``{visits}`` of the site's local day, and
  ``…:visitors``, the set of visitor ids that started a visit that day (exact ``SCARD``); both
  expire one day after that day ends;
- ``footfall:live:S:countries``: a hash, ISO 3166-1 alpha-2 code → visits from that country;
  ``footfall:live:country-names`` holds the names the location lookup gave (code → name). Keyed by
  code, not by label, so that a rebuild from MongoDB (which stores codes only) and live traffic
  never split one country into two keys; labels ``"<country name>, <CC>"`` are made at read time;
- ``footfall:live:S:notice``: set for ``NOTICE_GATE_MS`` after a change is announced; while it
  exists, further changes are counted but not announced (the live hub reads once more when it
  expires, see :mod:`footfall.live.hub`). A busy site thus costs each server process at most four
  notices a second instead of one per request;
- ``footfall:live:S:seen:<visitor id>``: only for a visitor that started a visit without a visitor
  number (numbering failed): marks it as seen on the site for the visitor cookie's lifetime, so it
  is not counted as a new unique visitor again.

"A visitor new on the site" is numbering's own rule: neither its signed cookie nor Redis's cache
knows a number for it on this site (:mod:`footfall.stores.visitor_numbers`), nor the ``seen`` mark.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "LIVE_PREFIX",
    "COUNTRY_NAMES_KEY",
    "REBUILDS_KEY",
    "CHANNEL_PATTERN",
    "NOTICE_GATE_MS",
    "LiveKeys",
    "live_keys",
    "channel",
    "site_of_channel",
    "local_day",
    "day_bounds",
    "day_ttl_ms",
    "parse_location",
    "location_label",
    "TRACK_FRAGMENT",
    "track_keys_and_args",
    "QUEUE_SCRIPT",
    "SWEEP_SCRIPT",
    "CounterSnapshot",
    "queue_snapshot_read",
    "parse_snapshot",
    "build_stats",
]

LIVE_PREFIX = "footfall:live:"
COUNTRY_NAMES_KEY = LIVE_PREFIX + "country-names"
REBUILDS_KEY = LIVE_PREFIX + "rebuilds"
CHANNEL_PATTERN = LIVE_PREFIX + "*"
NOTICE_GATE_MS = 250  # a site's changes are announced at most once per this many milliseconds
_TOTAL_FIELDS = ("visits", "page_views", "unique_visitors", "seq", "updated_ms", "since_ms", "seeded_ms")
_CODE_RE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class LiveKeys:
    """The Redis keys of one site's live counters on one local day (see the module docstring)."""

    totals: str
    active: str
    day: str
    day_visitors: str
    countries: str
    lock: str
    notice: str


def live_keys(site: str, day: date) -> LiveKeys:
    """The keys of ``site``'s counters, with ``day`` (the site's local date) for the day keys."""
    base = LIVE_PREFIX + site
    day_key = f"{base}:day:{day.isoformat()}"
    return LiveKeys(base, base + ":active", day_key, day_key + ":visitors", base + ":countries", base + ":rebuild",
                    base + ":notice")


def seen_key(site: str, visitor_id: str) -> str:
    """The mark of a visitor seen on ``site`` without a visitor number (see the module docstring)."""
    return f"{LIVE_PREFIX}{site}:seen:{visitor_id}"


def channel(site: str) -> str:
    """The pub/sub channel announcing changes of ``site``'s counters (message: the new ``seq``)."""
    return LIVE_PREFIX + site


def site_of_channel(name: str | bytes) -> str:
    """The site a channel of :data:`CHANNEL_PATTERN` belongs to."""
    text = name.decode() if isinstance(name, bytes) else name
    return text[len(LIVE_PREFIX):]


def local_day(now: datetime, zone: ZoneInfo) -> date:
    """The calendar date of the instant ``now`` (aware UTC datetime) in ``zone`` (FOOTFALL_TIMEZONE)."""
    return now.astimezone(zone).date()


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of ``day``'s local midnight in ``zone`` and of the next day's: ``[start, end)``."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def day_ttl_ms(now: datetime, zone: ZoneInfo) -> int:
    """Milliseconds the day keys of ``now``'s local day live from ``now``: until one day after the
    day ends (24 to 48 hours), relative so that a simulated clock gives a sane expiry too."""
    _, end = day_bounds(local_day(now, zone), zone)
    return max(1000, int((end + timedelta(days=1) - now).total_seconds() * 1000))


def parse_location(label: str) -> tuple[str, str]:
    """Split a location label ``"<country name>, <CC>"`` into ``(code, name)``; ``("", "")`` when the
    label is empty or its last part is not a two-letter code (an unknown location counts nowhere)."""
    name, sep, code = label.rpartition(", ")
    code = code.strip().upper()
    if not sep or not _CODE_RE.match(code):
        return "", ""
    return code, name.strip()


def location_label(code: str, names: Mapping[str, str] | None = None) -> str:
    """``"<country name>, <CC>"`` for a country code, the name as the location lookup gave it
    (``names``), else the code itself (after a rebuild, until traffic from there names it)."""
    return f"{(names or {}).get(code) or code}, {code}"


# Runs inside TRACK_SCRIPT after the session is decided and the entry queued, with its locals:
# active (1 same session), entry ('' when nothing queued), num (the visitor's number, '' if none),
# known (a number was known before this call), sid (the session id).
# KEYS: [7] active set, [8] totals, [9] day hash, [10] day visitors, [11] countries, [12] country
#       names, [13] the visitor's seen mark, [14] the site's notice gate
# ARGV: [16] active cutoff ms (now - window: members scored at or below it are inactive), [17] window ms,
#       [18] local day YYYY-MM-DD, [19] day keys TTL ms, [20] country code or '', [21] country name or '',
#       [22] the site's channel, [23] the notice gate ms
TRACK_FRAGMENT = """
local fresh = active == 0
local prev = redis.call('ZSCORE', KEYS[7], sid)
local changed = fresh or ARGV[6] == '1' or not prev or tonumber(prev) <= tonumber(ARGV[16])
redis.call('ZADD', KEYS[7], ARGV[2], sid)
redis.call('PEXPIRE', KEYS[7], ARGV[17])
if fresh then
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', ARGV[16])
  redis.call('HINCRBY', KEYS[8], 'visits', 1)
  redis.call('HINCRBY', KEYS[9], 'visits', 1)
  redis.call('PEXPIRE', KEYS[9], ARGV[19])
  redis.call('SADD', KEYS[10], ARGV[1])
  redis.call('PEXPIRE', KEYS[10], ARGV[19])
  if ARGV[20] ~= '' then
    redis.call('HINCRBY', KEYS[11], ARGV[20], 1)
    if ARGV[21] ~= '' then
      redis.call('HSET', KEYS[12], ARGV[20], ARGV[21])
    end
  end
  if not known and ARGV[14] == '0' then
    known = redis.call('EXISTS', KEYS[13]) == 1
  end
  if not known then
    redis.call('HINCRBY', KEYS[8], 'unique_visitors', 1)
  end
  if num == '' then
    redis.call('SET', KEYS[13], '1', 'PX', ARGV[12])
  end
end
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[8], 'page_views', 1)
end
if changed then
  redis.call('HSETNX', KEYS[8], 'since_ms', ARGV[2])
  local seq = redis.call('HINCRBY', KEYS[8], 'seq', 1)
  redis.call('HSET', KEYS[8], 'updated_ms', ARGV[2], 'day', ARGV[18])
  if redis.call('SET', KEYS[14], seq, 'PX', ARGV[23], 'NX') then
    redis.call('PUBLISH', ARGV[22], seq)
  end
end
"""

# A page view of an already-started session (server-rendered pages, the second round trip).
# KEYS: [1] stream, [2] totals, [3] notice gate. ARGV: [1] payload, [2] session id, [3] visitor
# number or '', [4] now ms, [5] local day, [6] channel, [7] notice gate ms. Returns the entry id.
QUEUE_SCRIPT = """
local id = redis.call('XADD', KEYS[1], '*', 'e', ARGV[1], 'sid', ARGV[2], 'new', '0', 'vn', ARGV[3])
redis.call('HINCRBY', KEYS[2], 'page_views', 1)
redis.call('HSETNX', KEYS[2], 'since_ms', ARGV[4])
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
redis.call('HSET', KEYS[2], 'updated_ms', ARGV[4], 'day', ARGV[5])
if redis.call('SET', KEYS[3], seq, 'PX', ARGV[7], 'NX') then
  redis.call('PUBLISH', ARGV[6], seq)
end
return id
"""

# Activity leaving the window, and a new local day, change the numbers without any request: the
# live hub runs this about once a second per site it streams (only for a site whose totals exist).
# KEYS: [1] active set, [2] totals. ARGV: [1] active cutoff ms, [2] now ms, [3] local day, [4] channel.
# Returns the new seq when something changed (and announces it), else 0.
SWEEP_SCRIPT = """
if redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
local removed = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if removed > 0 or redis.call('HGET', KEYS[2], 'day') ~= ARGV[3] then
  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  redis.call('HSET', KEYS[2], 'updated_ms', ARGV[2], 'day', ARGV[3])
  redis.call('PUBLISH', ARGV[4], seq)
  return seq
end
return 0
"""


def _ms(instant: datetime) -> int:
    return int(instant.timestamp() * 1000)


def track_keys_and_args(
    site: str, visitor_id: str, now: datetime, *, window: int, zone: ZoneInfo, location: str = ""
) -> tuple[list[str], list[Any]]:
    """The KEYS 7-14 and ARGV 16-23 that :data:`TRACK_FRAGMENT` reads, appended to the track call.

    :param site: the request's site.
    :param visitor_id: the request's visitor.
    :param now: the request's instant (aware UTC datetime); Lua never reads a clock.
    :param window: seconds of inactivity after which a session stops being active (FOOTFALL_ACTIVE_WINDOW).
    :param zone: the time zone of "today" (FOOTFALL_TIMEZONE).
    :param location: ``"<country name>, <CC>"`` from the location lookup, ``""`` when unknown.
    :return: ``(keys, args)``.
    """
    day = local_day(now, zone)
    keys = live_keys(site, day)
    code, name = parse_location(location)
    now_ms = _ms(now)
    return (
        [keys.active, keys.totals, keys.day, keys.day_visitors, keys.countries, COUNTRY_NAMES_KEY,
         seen_key(site, visitor_id), keys.notice],
        [now_ms - window * 1000, window * 1000, day.isoformat(), day_ttl_ms(now, zone), code, name, channel(site),
         NOTICE_GATE_MS],
    )


@dataclass(frozen=True, slots=True)
class CounterSnapshot:
    """One site's counters, read atomically (``MULTI``/``EXEC``).

    :ivar visits, page_views, unique_visitors: totals since the data began (see the module docstring).
    :ivar today_visits, today_unique_visitors: of the site's local day at the read.
    :ivar active: sessions with activity inside the window at the read.
    :ivar countries: country code → visits.
    :ivar names: country code → name, as the location lookup gave it.
    :ivar seq: the per-site change sequence (0 before any change).
    :ivar updated_ms: the last change (UNIX ms) or ``None``.
    :ivar since_ms: the counters' generation (the first change they counted), ``None`` when no key exists.
    :ivar seeded: MongoDB's earlier data has been added (:mod:`footfall.live.rebuild`).
    """

    visits: int = 0
    page_views: int = 0
    unique_visitors: int = 0
    today_visits: int = 0
    today_unique_visitors: int = 0
    active: int = 0
    countries: dict[str, int] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    updated_ms: int | None = None
    since_ms: int | None = None
    seeded: bool = False

    @property
    def event_id(self) -> str:
        """The SSE ``id:`` of this state: ``"<since_ms>-<seq>"``, increasing within a generation of
        the counters (like a Redis Stream id); a Redis that lost them starts a later generation."""
        return f"{self.since_ms or 0}-{self.seq}"


def queue_snapshot_read(pipe: Any, site: str, now: datetime, *, window: int, zone: ZoneInfo) -> None:
    """Queue the snapshot's six commands on a transactional pipeline (sync or asyncio: the caller
    executes it); :func:`parse_snapshot` reads the reply. Each is O(1), ``ZCOUNT`` O(log n), and the
    two country hashes O(countries): none grows with the number of sessions."""
    keys = live_keys(site, local_day(now, zone))
    pipe.hmget(keys.totals, *_TOTAL_FIELDS)
    pipe.hget(keys.day, "visits")
    pipe.scard(keys.day_visitors)
    pipe.zcount(keys.active, f"({_ms(now) - window * 1000}", "+inf")
    pipe.hgetall(keys.countries)
    pipe.hgetall(COUNTRY_NAMES_KEY)


def _int(raw: Any) -> int:
    return int(raw) if raw is not None else 0


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_snapshot(reply: Sequence[Any]) -> CounterSnapshot:
    """The :class:`CounterSnapshot` of the reply to :func:`queue_snapshot_read`'s commands."""
    totals, day_visits, day_visitors, active, countries, names = reply
    visits, page_views, unique, seq, updated, since, seeded = totals
    return CounterSnapshot(
        visits=_int(visits), page_views=_int(page_views), unique_visitors=_int(unique),
        today_visits=_int(day_visits), today_unique_visitors=_int(day_visitors), active=_int(active),
        countries={_text(code): int(count) for code, count in countries.items()},
        names={_text(code): _text(name) for code, name in names.items()},
        seq=_int(seq), updated_ms=int(updated) if updated is not None else None,
        since_ms=int(since) if since is not None else None, seeded=seeded is not None,
    )


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_stats(snapshot: CounterSnapshot, *, now: datetime) -> dict[str, Any]:
    """The stats object of ``GET /api/stats``, ``/api/visitor/register`` and the live streams (the
    seed ``shared/seeds/001_c05ca85c54535c0d.txt``'s shape, with its ``totalVisits`` spelling)::

        {"totalVisits", "todayVisits", "uniqueVisitors", "todayUniqueVisitors", "activeUsers",
         "pageViews", "locations": {"<country name>, <CC>": {"count": visits}}, "lastUpdated"}

    ``locations`` lists countries by visits, most first; ``lastUpdated`` is the last change of the
    counters (ISO 8601 UTC with milliseconds, ``Z``), or ``now`` when nothing changed yet.

    :param snapshot: the site's counters.
    :param now: the read's instant (aware UTC datetime).
    :return: a JSON-ready dict.
    """
    ranked = sorted(snapshot.countries.items(), key=lambda item: (-item[1], item[0]))
    updated = datetime.fromtimestamp(snapshot.updated_ms / 1000, UTC) if snapshot.updated_ms is not None else now
    return {
        "totalVisits": snapshot.visits,
        "todayVisits": snapshot.today_visits,
        "uniqueVisitors": snapshot.unique_visitors,
        "todayUniqueVisitors": snapshot.today_unique_visitors,
        "activeUsers": snapshot.active,
        "pageViews": snapshot.page_views,
        "locations": {location_label(code, snapshot.names): {"count": count} for code, count in ranked if count > 0},
        "lastUpdated": _iso(updated),
    }
