"""Rebuilding the live counters from MongoDB when Redis lost them (a new Redis, ``FLUSHALL``).

The counters count from their generation's start, ``since_ms`` (the first change they counted after
the keys were created). What happened before is in MongoDB, as far as the drain has written it, so
a site's counters are *seeded* once: one aggregation (:func:`rebuild_pipeline`) counts what MongoDB
holds from before ``since_ms`` and one Lua call (:data:`APPLY_SCRIPT`) adds it, atomically, if no
other process did. Counting what is before ``since_ms`` and adding it to what Redis counted from
``since_ms`` counts every recorded event once, however long the drain takes with the newer ones.

What a rebuild cannot know: events that were queued on the Redis Stream but not yet written to
MongoDB when Redis lost its data were lost with the stream; the totals then come from what the drain
had written. Timestamps are compared across processes, so clocks off by more than the time between
two requests of a site could count a request at the boundary twice or not at all. Every rebuild is
recorded in ``footfall:live:rebuilds`` and shown by ``GET /analytics/health``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from footfall.live.counters import REBUILDS_KEY, LiveKeys, channel
from footfall.stores.documents import PAGE_VIEWS

__all__ = ["RebuildCounts", "rebuild_pipeline", "parse_rebuild", "APPLY_SCRIPT", "apply_call", "RELEASE_SCRIPT",
           "parse_rebuild_records", "LOCK_MS"]

LOCK_MS = 30_000  # one process rebuilds a site at a time; the lock frees itself after this (ms)
SADD_CHUNK = 1000  # visitor ids per SADD inside the apply script


@dataclass(frozen=True)
class RebuildCounts:
    """What MongoDB holds for a site from before the counters' generation.

    :ivar today_visitors: visitor id → visits started on the local day of the rebuild.
    :ivar countries: ISO country code → visits.
    """

    visits: int = 0
    page_views: int = 0
    unique_visitors: int = 0
    today_visitors: dict[str, int] = field(default_factory=dict)
    countries: dict[str, int] = field(default_factory=dict)

    @property
    def today_visits(self) -> int:
        """Visits started on the local day of the rebuild."""
        return sum(self.today_visitors.values())

    @property
    def empty(self) -> bool:
        """Nothing recorded at all (no visit, no page view)."""
        return not self.visits and not self.page_views


def rebuild_pipeline(site: str, before: datetime, day_start: datetime) -> list[dict[str, Any]]:
    """The one aggregation, to run on ``sessions``: visits (sessions started before ``before``),
    unique visitors (their distinct ``visitor_id``), today's visits per visitor (started at or after
    ``day_start``), visits per ``country`` code and, through ``$unionWith``, page views (``ts`` before
    ``before``). The definitions are ``docs/data-model.md``'s, over all time before ``before``.

    :param site: the site.
    :param before: the counters' generation start (exclusive bound, UTC datetime).
    :param day_start: the local midnight that starts "today" (UTC datetime).
    :return: a pipeline yielding one document ``{"visits": [{"n"}], "visitors": [{"n"}], "today":
        [{"_id": visitor, "n"}], "countries": [{"_id": code, "n"}], "page_views": [{"n"}]}``.
    """
    return [
        {"$match": {"site": site, "started_at": {"$lt": before}}},
        {"$project": {"_id": 0, "kind": {"$literal": "session"}, "visitor_id": 1, "started_at": 1, "country": 1}},
        {"$unionWith": {"coll": PAGE_VIEWS, "pipeline": [
            {"$match": {"site": site, "ts": {"$lt": before}}},
            {"$group": {"_id": None, "n": {"$sum": 1}}},
            {"$project": {"_id": 0, "n": 1, "kind": {"$literal": "page_views"}}},
        ]}},
        {"$facet": {
            "visits": [{"$match": {"kind": "session"}}, {"$count": "n"}],
            "visitors": [{"$match": {"kind": "session"}}, {"$group": {"_id": "$visitor_id"}}, {"$count": "n"}],
            "today": [{"$match": {"kind": "session", "started_at": {"$gte": day_start}}},
                      {"$group": {"_id": "$visitor_id", "n": {"$sum": 1}}}],
            "countries": [{"$match": {"kind": "session", "country": {"$type": "string"}}},
                          {"$group": {"_id": "$country", "n": {"$sum": 1}}}],
            "page_views": [{"$match": {"kind": "page_views"}}],
        }},
    ]


def _first_n(rows: Sequence[dict[str, Any]] | None) -> int:
    return int(rows[0]["n"]) if rows else 0


def parse_rebuild(docs: Sequence[dict[str, Any]]) -> RebuildCounts:
    """The :class:`RebuildCounts` of :func:`rebuild_pipeline`'s result (a list of one document)."""
    facet = docs[0] if docs else {}
    return RebuildCounts(
        visits=_first_n(facet.get("visits")),
        page_views=_first_n(facet.get("page_views")),
        unique_visitors=_first_n(facet.get("visitors")),
        today_visitors={str(row["_id"]): int(row["n"]) for row in facet.get("today") or [] if row["_id"] is not None},
        countries={str(row["_id"]).upper(): int(row["n"]) for row in facet.get("countries") or [] if row["_id"]},
    )


# KEYS: [1] totals, [2] day hash, [3] day visitors, [4] countries, [5] footfall:live:rebuilds
# ARGV: [1] since_ms the counts are from before, [2] now ms, [3] visits, [4] page views, [5] unique
#       visitors, [6] today's visits, [7] day keys TTL ms, [8] channel, [9] local day, [10] site,
#       [11] the record for health (JSON), [12] n countries, then n pairs (code, visits), then
#       today's visitor ids.
# Returns 1 when added, 0 when the site was seeded already, -1 when the counters' generation is not
# the one counted before (Redis lost them again meanwhile): nothing is changed then.
APPLY_SCRIPT = """
if redis.call('HEXISTS', KEYS[1], 'seeded_ms') == 1 then
  return 0
end
if redis.call('HGET', KEYS[1], 'since_ms') ~= ARGV[1] then
  return -1
end
redis.call('HINCRBY', KEYS[1], 'visits', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'page_views', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'unique_visitors', ARGV[5])
redis.call('HSET', KEYS[1], 'seeded_ms', ARGV[2])
if tonumber(ARGV[6]) > 0 then
  redis.call('HINCRBY', KEYS[2], 'visits', ARGV[6])
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
end
local n = tonumber(ARGV[12])
for i = 0, n - 1 do
  redis.call('HINCRBY', KEYS[4], ARGV[13 + 2 * i], ARGV[14 + 2 * i])
end
local first = 13 + 2 * n
for i = first, #ARGV, """ + str(SADD_CHUNK) + """ do
  redis.call('SADD', KEYS[3], unpack(ARGV, i, math.min(i + """ + str(SADD_CHUNK - 1) + """, #ARGV)))
end
if #ARGV >= first then
  redis.call('PEXPIRE', KEYS[3], ARGV[7])
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('HSET', KEYS[1], 'updated_ms', ARGV[2], 'day', ARGV[9])
redis.call('HSET', KEYS[5], ARGV[10], ARGV[11])
redis.call('PUBLISH', ARGV[8], seq)
return 1
"""

# KEYS: [1] lock. ARGV: [1] the owner's token. Deletes the lock only if this owner still holds it.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def apply_call(
    site: str, keys: LiveKeys, counts: RebuildCounts, *, since_ms: int, now_ms: int, day: str, day_ttl_ms: int
) -> tuple[list[str], list[Any]]:
    """``(keys, args)`` of :data:`APPLY_SCRIPT` adding ``counts`` to ``site``'s counters."""
    record = json.dumps({"at": _iso(now_ms), "since": _iso(since_ms), "visits": counts.visits,
                         "page_views": counts.page_views, "unique_visitors": counts.unique_visitors})
    pairs = [item for code, visits in sorted(counts.countries.items()) for item in (code, visits)]
    return (
        [keys.totals, keys.day, keys.day_visitors, keys.countries, REBUILDS_KEY],
        [since_ms, now_ms, counts.visits, counts.page_views, counts.unique_visitors, counts.today_visits,
         day_ttl_ms, channel(site), day, site, record, len(counts.countries), *pairs, *counts.today_visitors],
    )


def parse_rebuild_records(raw: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """``footfall:live:rebuilds`` (site → JSON) as ``{site: {"at", "since", "visits", "page_views",
    "unique_visitors"}}`` for ``GET /analytics/health``; an unreadable record is skipped."""
    records: dict[str, dict[str, Any]] = {}
    for site, value in raw.items():
        try:
            records[site.decode() if isinstance(site, bytes) else str(site)] = json.loads(value)
        except ValueError:
            continue
    return dict(sorted(records.items()))
