"""The guard that counts every drained event into its visit exactly once, without a growing array.

A page view or custom event is stored by an insert keyed by its event id, and counted into its
visit by the visit's update; the two are separate writes. The drain (:func:`footfall.stores.
mongo_writer.write_batch`) writes a batch in this order, with a fresh, time-ordered ``token`` per
attempt (:func:`attempt_token`):

1. an *intent* in ``counting`` (``_id`` = token, ``events`` = the batch's event ids, ``at``);
2. the event inserts: an insert that is new is counted by step 3;
3. one update per visit, which pushes ``token`` to the visit's ``count_tokens`` (its last 32) in the
   same write that adds the counts (:mod:`footfall.stores.session_update`);
4. the batch's events are removed from any *earlier* intent that still names them (a crashed
   attempt's), and then this attempt's intent is deleted.

An event whose insert is a duplicate was stored by an earlier attempt (or sent twice). Whether
that attempt counted it is decided by :func:`was_counted`: if no other intent names the event, the
attempt that stored it finished (step 4 follows step 3), so it was counted; if an intent does, the
event is counted now unless the visit's ``count_tokens`` holds that intent's token. So a crash
anywhere (after 1, 2, 3 or 4) neither loses nor doubles a count (step 4 clears an earlier intent
only after step 3 has pushed the token of the attempt that settled its events, and before its own
intent goes), provided the retry comes while the visit still keeps the crashed attempt's token:
fewer than 32 other writes to the same visit in between. When it no longer can tell (the visit's
list is full and older than the intent), the event is *not* counted again, and a warning is
logged: a possible under-count, never a double count.

What it does not cover: two drains writing the same entries at once (a drain stalled for longer
than ``FOOTFALL_DRAIN_CLAIM_IDLE`` while another claims its entries) can count such an event twice.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime

from pymongo.database import Database

from footfall.stores.session_update import COUNT_TOKENS, COUNT_TOKENS_KEPT

__all__ = ["COUNTING", "attempt_token", "was_counted", "write_intent", "finish_intent", "earlier_intents",
           "stored_tokens", "forget_recovered"]

COUNTING = "counting"


def attempt_token() -> str:
    """A fresh token for one write attempt: 16 hex digits of the clock (ns) then 8 random ones, so
    tokens sort by time (:func:`was_counted` relies on it) and never repeat in practice."""
    return f"{time.time_ns():016x}{secrets.token_hex(4)}"


def was_counted(intents: Collection[str], session_tokens: Sequence[str] | None) -> bool | None:
    """Whether a duplicate event was counted into its visit by the attempt that stored it.

    :param intents: the tokens of the other attempts' intents still naming the event (step 1 of
        the module's docstring); empty when every attempt that wrote it finished.
    :param session_tokens: the visit's ``count_tokens`` (``None``: the visit is not stored).
    :return: ``True`` (counted: skip it), ``False`` (not counted: count it now), ``None`` (cannot
        tell: the visit's list is full and every intent is older than all it keeps; the caller
        skips it and warns).
    """
    if not intents:
        return True
    kept = list(session_tokens or ())
    if any(token in kept for token in intents):
        return True
    if len(kept) >= COUNT_TOKENS_KEPT and max(intents) < min(kept):
        return None
    return False


def write_intent(db: Database, token: str, event_ids: Sequence[str]) -> None:
    """Step 1: record that attempt ``token`` is about to store and count ``event_ids``.

    :raises pymongo.errors.PyMongoError: the write failed (the caller wraps it).
    """
    db[COUNTING].insert_one({"_id": token, "events": list(event_ids), "at": datetime.now(UTC)})


def finish_intent(db: Database, token: str) -> None:
    """Step 4: the attempt's counts are applied; its intent goes.

    :raises pymongo.errors.PyMongoError: the write failed (the caller wraps it).
    """
    db[COUNTING].delete_one({"_id": token})


def earlier_intents(db: Database, token: str, event_ids: Iterable[str]) -> dict[str, set[str]]:
    """The intents of other attempts that name any of ``event_ids``.

    The collection holds only the attempts in flight (one per running drain) and those a crash
    interrupted, so every other intent is read and intersected here. Not with ``events: {$in: ids}``:
    SecantusDB compares an array with an ``$in`` list pairwise (measured: 62 s for one intent of
    5,000 ids against 5,000 ids that did not match).

    :return: event id → the tokens of the intents naming it.
    :raises pymongo.errors.PyMongoError: the read failed (the caller wraps it).
    """
    wanted = set(event_ids)
    found: dict[str, set[str]] = {}
    for intent in db[COUNTING].find({"_id": {"$ne": token}}):
        for event_id in wanted.intersection(intent.get("events") or ()):
            found.setdefault(event_id, set()).add(intent["_id"])
    return found


def stored_tokens(db: Database, sessions: Collection[str]) -> dict[str, list[str]]:
    """The ``count_tokens`` of the stored visits among ``sessions`` (absent ones are left out).

    :raises pymongo.errors.PyMongoError: the read failed (the caller wraps it).
    """
    if not sessions:
        return {}
    return {doc["_id"]: list(doc.get(COUNT_TOKENS) or ())
            for doc in db["sessions"].find({"_id": {"$in": list(sessions)}}, {COUNT_TOKENS: 1})}


def forget_recovered(db: Database, intents: dict[str, set[str]]) -> None:
    """Remove the settled events from the earlier intents that named them, and the intents left empty.

    :param intents: event id → tokens, as :func:`earlier_intents` returned (every event settled now).
    :raises pymongo.errors.PyMongoError: the write failed (the caller wraps it).
    """
    by_token: dict[str, set[str]] = {}
    for event_id, tokens in intents.items():
        for token in tokens:
            by_token.setdefault(token, set()).add(event_id)
    for token, settled in by_token.items():  # not $pull with $in: pairwise on SecantusDB, as above
        intent = db[COUNTING].find_one({"_id": token}, {"events": 1})
        if intent is None:
            continue
        left = [event_id for event_id in intent.get("events") or () if event_id not in settled]
        if left:
            db[COUNTING].update_one({"_id": token}, {"$set": {"events": left}})
        else:
            db[COUNTING].delete_one({"_id": token})
