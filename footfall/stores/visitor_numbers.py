"""Visitor numbers (#0001, #0002, …): unique per site forever, handed out in blocks.

The design seed ``shared/seeds/000_fa6ac39991fb96b5.txt`` uses a PostgreSQL sequence; footfall gets
the same guarantees with a hi/lo allocator:

- MongoDB's ``visitor_number_blocks`` holds, per site, the durable high-water mark ``reserved``:
  every number ever handed out is ≤ it. A block is reserved by one atomic ``$inc``.
- Redis (``footfall:vnum:<site>``) hands the numbers of the current block out one by one, inside the
  request path's single Lua round trip (:mod:`footfall.stores.redis_sessions`).
- When Redis loses the allocator (restart without persistence, ``FLUSHALL``, failover) or a block
  runs out, a new block is reserved above the high-water mark: numbers may be skipped after a
  failure, never repeated, whatever the number of app servers.

The ``visitors`` collection (one document per visitor per site, ``_id`` = ``"<site>|<visitor id>"``)
is written by the drain; a unique partial index on ``(site, visitor_number)`` enforces uniqueness
in the database too. :func:`backfill` numbers visitors that lack one, :func:`status` reports.
"""

from __future__ import annotations

from typing import Any

import redis
from pymongo import ReturnDocument, UpdateMany, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.errors import StoreUnavailable
from footfall.stores.documents import PAGE_VIEWS, SESSIONS, VISITORS
from footfall.stores.redis_sessions import number_key

__all__ = [
    "BLOCKS", "visitor_label", "visitor_doc_id", "reserve_block", "async_reserve_block", "backfill", "status",
]

BLOCKS = "visitor_number_blocks"


def visitor_label(number: int | None, digits: int = 4) -> str | None:
    """``#0042`` for 42 with 4 digits; wider numbers keep every digit (``#12345``); ``None`` stays None.

    :param digits: zero-padding width (``FOOTFALL_VISITOR_NUMBER_DIGITS``).
    """
    return None if number is None else f"#{number:0{digits}d}"


def visitor_doc_id(site: str, visitor_id: str) -> str:
    """The ``visitors`` document id of a visitor on a site (``|`` never occurs in a site name)."""
    return f"{site}|{visitor_id}"


def _block_update(site: str, size: int) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"_id": site}, {"$inc": {"reserved": size}}


def reserve_block(db: Database, site: str, size: int) -> tuple[int, int]:
    """Reserve the next ``size`` numbers of ``site`` above its high-water mark (one atomic ``$inc``).

    :return: ``(first, last)``, inclusive.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        doc = db[BLOCKS].find_one_and_update(*_block_update(site, size), upsert=True,
                                             return_document=ReturnDocument.AFTER)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not reserve visitor numbers for site {site!r}: {exc}") from exc
    return _block_range(doc, site, size)


def _block_range(doc: dict[str, Any] | None, site: str, size: int) -> tuple[int, int]:
    if doc is None:  # an upsert returning the document after the update always finds one
        raise StoreUnavailable(f"MongoDB returned no visitor-number block for site {site!r}")
    return int(doc["reserved"]) - size + 1, int(doc["reserved"])


async def async_reserve_block(db: AsyncDatabase, site: str, size: int) -> tuple[int, int]:
    """The asyncio twin of :func:`reserve_block` (pymongo's ``AsyncMongoClient``)."""
    try:
        doc = await db[BLOCKS].find_one_and_update(*_block_update(site, size), upsert=True,
                                                   return_document=ReturnDocument.AFTER)
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not reserve visitor numbers for site {site!r}: {exc}") from exc
    return _block_range(doc, site, size)


def _sites(db: Database, site: str | None) -> list[str]:
    return [site] if site is not None else sorted(db[VISITORS].distinct("site"))


def backfill(
    db: Database, site: str | None = None, *, redis_client: redis.Redis | None = None, visitor_ttl: int = 0
) -> dict[str, int]:
    """Number the visitors that lack a number, in first-seen order; run twice, same result.

    Per site: the visitors without a number are read in ``first_seen_at`` order, a block of exactly
    that many numbers is reserved, and each is set only where the visitor still has none (so two
    backfills at once never give a visitor two numbers; the loser's numbers are skipped). Their
    sessions and page views get the number too, and Redis's cache learns it when a client is given.

    :param site: one site, or ``None`` for every site.
    :param redis_client: to warm ``footfall:vn:<site>:<visitor>`` (optional).
    :param visitor_ttl: seconds the warmed cache entries live (0: not warmed).
    :return: ``{site: numbers assigned}``.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    assigned: dict[str, int] = {}
    try:
        for name in _sites(db, site):
            lacking = list(db[VISITORS].find({"site": name, "visitor_number": None}, {"visitor_id": 1})
                           .sort([("first_seen_at", 1), ("_id", 1)]))
            if not lacking:
                assigned[name] = 0
                continue
            first, _ = reserve_block(db, name, len(lacking))
            numbers = {doc["visitor_id"]: first + i for i, doc in enumerate(lacking)}
            result = db[VISITORS].bulk_write([
                UpdateOne({"_id": doc["_id"], "visitor_number": None},
                          {"$set": {"visitor_number": numbers[doc["visitor_id"]]}})
                for doc in lacking], ordered=False)
            won = {doc["visitor_id"]: doc["visitor_number"] for doc in db[VISITORS].find(
                {"site": name, "visitor_id": {"$in": list(numbers)}}, {"visitor_id": 1, "visitor_number": 1})}
            for collection in (SESSIONS, PAGE_VIEWS):
                db[collection].bulk_write([
                    UpdateMany({"site": name, "visitor_id": vid, "visitor_number": None},
                               {"$set": {"visitor_number": n}})
                    for vid, n in won.items()], ordered=False)
            if redis_client is not None and visitor_ttl > 0:
                _warm(redis_client, name, won, visitor_ttl)
            assigned[name] = result.modified_count
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer during the backfill: {exc}") from exc
    return assigned


def _warm(client: redis.Redis, site: str, numbers: dict[str, int], ttl: int) -> None:
    try:
        with client.pipeline(transaction=False) as pipe:
            for visitor_id, number in numbers.items():
                pipe.set(number_key(site, visitor_id), number, ex=ttl, nx=True)
            pipe.execute()
    except redis.RedisError:
        pass  # a cold cache costs nothing but a later backfill-free lookup: the cookie or MongoDB has it


def status(db: Database, site: str | None = None) -> dict[str, dict[str, Any]]:
    """Per site: the durable high-water mark, the highest number assigned, visitors, visitors without
    a number.

    :return: ``{site: {"high_water_mark", "highest_assigned", "visitors", "without_number"}}``.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    try:
        sites = set(_sites(db, site)) | ({site} if site else {d["_id"] for d in db[BLOCKS].find({}, {"_id": 1})})
        report: dict[str, dict[str, Any]] = {}
        for name in sorted(sites):
            block = db[BLOCKS].find_one({"_id": name}) or {}
            top = db[VISITORS].find_one({"site": name, "visitor_number": {"$type": "number"}},
                                        {"visitor_number": 1}, sort=[("visitor_number", -1)])
            report[name] = {
                "high_water_mark": int(block.get("reserved", 0)),
                "highest_assigned": int(top["visitor_number"]) if top else 0,
                "visitors": db[VISITORS].count_documents({"site": name}),
                "without_number": db[VISITORS].count_documents({"site": name, "visitor_number": None}),
            }
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    return report
