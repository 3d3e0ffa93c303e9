"""One ``sessions`` update per visit per drained batch, with plain update operators: pure code, no I/O.

Why (issue 11): on SecantusDB an update costs about the same whatever it changes (every index entry
of the document is deleted and written again), and an aggregation-pipeline update costs 4–5× a
plain one. The drain used to send one pipeline update per event, guarded by an ``event_ids`` array
that grew with every event of the visit, so each update got dearer as the visit grew and the drain
slowed down as data grew. Here a batch's records are grouped per visit (:func:`group_by_session`)
and each group becomes one update of ``$inc``, ``$min``, ``$max``, ``$set``, ``$setOnInsert``,
``$addToSet`` and a bounded ``$push`` (:func:`group_update`).

Entry and exit page follow the earliest and latest page view *by time*, whatever order the events
arrive in; plain operators cannot choose a field's value by comparing times, so the choice is made
here and the *filter* guards it (:class:`ViewSpan`, :func:`choose_modes`):

- entry ``"keep"``: the filter asks ``first_view_at <= the group's first view`` (the visit already
  has an earlier or equal entry page; on insert, ``$setOnInsert`` writes the group's); entry ``"set"``:
  the filter asks ``first_view_at`` missing or later, and ``$set`` writes the group's first view
  (its path, time and UTM fields, which follow the entry page);
- exit ``"set"``: ``last_view_at`` missing or not later than the group's last view (so a view at the
  same instant as the current exit page becomes the exit page, as before); exit ``"keep"``: later.

A wrong guess about the stored document does not write anything: the filter does not match, the
upsert collides with the existing ``_id`` (duplicate key), and the writer reads the visit's view
times and sends the group again with the right modes (:mod:`footfall.stores.mongo_writer`). The
guess comes from what the drain last wrote (a bounded cache); with no hint, "keep the entry, move
the exit" is right for events that arrive in order, and for a visit not stored yet.

Every update carries the rollup marks (:func:`footfall.stores.rollup_marks.session_marks`: a fresh
``rollup_dirty`` token and the hours of every instant it records) and pushes the write's token to
``count_tokens`` (the last :data:`COUNT_TOKENS_KEPT`), which tells a retried batch whether this
write's counts were applied (:mod:`footfall.stores.mongo_writer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from footfall.enrich import UTM_KEYS, utm_fields
from footfall.events import CustomEvent, PageView, SessionStart
from footfall.stores.documents import visit_facts
from footfall.stores.rollup_marks import session_marks

__all__ = ["COUNT_TOKENS", "COUNT_TOKENS_KEPT", "SessionGroup", "ViewSpan", "Mode", "group_by_session",
           "choose_modes", "group_update", "span_after"]

COUNT_TOKENS = "count_tokens"
COUNT_TOKENS_KEPT = 32  # tokens kept per visit: the write attempts a retried batch can still recognise

Mode = Literal["keep", "set"]


@dataclass
class SessionGroup:
    """What one batch counts into one visit.

    :ivar start: the visit's start, when an entry that also counts an event carried it (its
        referrer, User-Agent and their facts are the session's).
    :ivar views: the page views counted, in stream order; ``events`` the custom events likewise.
    :ivar entries: the stream entry ids the group holds (a rejected update reports them all).
    """

    session_id: str
    start: SessionStart | None = None
    views: list[PageView] = field(default_factory=list)
    events: list[CustomEvent] = field(default_factory=list)
    entries: list[str] = field(default_factory=list)

    def add(self, entry_id: str, record: PageView | CustomEvent, start: SessionStart | None) -> None:
        """Add one counted record (and the start its entry carried)."""
        if isinstance(record, PageView):
            self.views.append(record)
        else:
            self.events.append(record)
        if start is not None and (self.start is None or start.started_at < self.start.started_at):
            self.start = start
        self.entries.append(entry_id)

    @property
    def first_view(self) -> PageView | None:
        """The earliest page view by time; the first in stream order among equal times."""
        return min(self.views, key=lambda view: view.ts) if self.views else None

    @property
    def last_view(self) -> PageView | None:
        """The latest page view by time; the last in stream order among equal times."""
        return max(reversed(self.views), key=lambda view: view.ts) if self.views else None


@dataclass(frozen=True, slots=True)
class ViewSpan:
    """What the writer believes the stored visit holds: the times of its entry and exit page views
    (``None``: no page view yet). Only a hint: the update's filter checks it."""

    first: datetime | None
    last: datetime | None


def group_by_session(counted: Iterable[tuple[str, PageView | CustomEvent, SessionStart | None]]) -> list[SessionGroup]:
    """Group counted records by visit, keeping stream order within each group.

    :param counted: ``(entry id, page view or custom event, the start its entry carried or None)``.
    :return: one :class:`SessionGroup` per session id, in order of first appearance.
    """
    groups: dict[str, SessionGroup] = {}
    for entry_id, record, start in counted:
        groups.setdefault(record.session_id, SessionGroup(record.session_id)).add(entry_id, record, start)
    return list(groups.values())


def choose_modes(group: SessionGroup, known: ViewSpan | None) -> tuple[Mode, Mode]:
    """The ``(entry, exit)`` modes for ``group`` given what is believed stored.

    :param known: the stored visit's view times, or ``None`` when unknown (then events are assumed
        to arrive in order: keep the entry page, move the exit page).
    :return: ``("keep" | "set", "keep" | "set")``; meaningless for a group without page views.
    """
    first, last = group.first_view, group.last_view
    if first is None or last is None or known is None:
        return "keep", "set"
    entry: Mode = "set" if known.first is None or first.ts < known.first else "keep"
    exit_: Mode = "set" if known.last is None or last.ts >= known.last else "keep"
    return entry, exit_


def _counts_and_sets(group: SessionGroup) -> tuple[dict[str, int], dict[str, Any]]:
    paths = list(dict.fromkeys(view.path for view in group.views))
    routes = list(dict.fromkeys(r.route for r in group.views if r.route is not None))
    names = list(dict.fromkeys(event.name for event in group.events))
    return ({"page_views": len(group.views), "events": len(group.events)},
            {"paths": {"$each": paths}, "routes": {"$each": routes}, "event_names": {"$each": names}})


def group_update(group: SessionGroup, modes: tuple[Mode, Mode], token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``(filter, update)`` upsert that counts ``group`` into its visit, in one write.

    Counts with ``$inc`` (``page_views``, ``events``); ``started_at`` a minimum, ``last_seen_at`` a
    maximum; ``paths``, ``routes``, ``event_names`` and the rollup ``hours`` with ``$addToSet``; the
    entry and exit page as ``modes`` say (see the module's docstring); ``token`` pushed to
    ``count_tokens`` (the last :data:`COUNT_TOKENS_KEPT` kept). With a start, its referrer,
    User-Agent and their facts (:func:`footfall.stores.documents.visit_facts`) are the session's and
    ``start_recorded`` is set; without one, the facts of the group's first record are written only
    when the update inserts the document (a start written later overwrites them).
    ``visitor_number``: a ``$max`` when a record knows it (a number, once given, is the visitor's for
    good, and any number sorts after ``null``), else ``null`` on insert.

    :param group: the records to count (at least one page view or custom event).
    :param modes: from :func:`choose_modes`.
    :param token: this write attempt's token (``count_tokens``).
    :return: the filter (``_id`` plus the entry and exit guards) and the update document.
    :raises ValueError: the group counts nothing.
    """
    records: list[PageView | CustomEvent] = [*group.views, *group.events]
    if not records:
        raise ValueError(f"session {group.session_id}: a group must count a page view or a custom event")
    start = group.start
    instants = [record.ts for record in records] + ([start.started_at] if start is not None else [])
    marks = session_marks(*instants)
    counts, sets = _counts_and_sets(group)
    first_record = min(records, key=lambda record: record.ts)
    numbers = [n for n in (start.visitor_number if start else None, *(r.visitor_number for r in records))
               if n is not None]
    update: dict[str, Any] = {
        "$inc": counts,
        "$min": {"started_at": min(instants)},
        "$max": {"last_seen_at": max(instants)},
        "$addToSet": {**sets, **marks["$addToSet"]},
        "$push": {COUNT_TOKENS: {"$each": [token], "$slice": -COUNT_TOKENS_KEPT}},
        "$set": dict(marks["$set"]),
        "$setOnInsert": {"site": first_record.site, "visitor_id": first_record.visitor_id},
    }
    if numbers:
        update["$max"]["visitor_number"] = max(numbers)
    else:
        update["$setOnInsert"]["visitor_number"] = None
    if start is not None:
        facts = visit_facts(referrer=start.referrer, host=start.host, user_agent=start.user_agent,
                            country=start.country, city=start.city)
        update["$set"].update({"referrer": start.referrer, "user_agent": start.user_agent, "start_recorded": True,
                               **facts})
    else:
        facts = visit_facts(referrer=None, host=first_record.host, user_agent=first_record.user_agent,
                            country=first_record.country, city=first_record.city)
        update["$setOnInsert"].update({"user_agent": first_record.user_agent, "referrer_host": None, **facts})
    query: dict[str, Any] = {"_id": group.session_id}
    first, last = group.first_view, group.last_view
    if first is None or last is None:  # custom events only: no page field changes
        update["$setOnInsert"].update(dict.fromkeys(UTM_KEYS))
        return query, update
    entry_mode, exit_mode = modes
    entry = {"entry_path": first.path, "first_view_at": first.ts, **utm_fields(first.query)}
    exit_ = {"exit_path": last.path, "last_view_at": last.ts}
    if entry_mode == "set":
        query["first_view_at"] = {"$not": {"$lte": first.ts}}  # missing, null or later
        update["$set"].update(entry)
    else:
        query["first_view_at"] = {"$lte": first.ts}
        update["$setOnInsert"].update(entry)
    if exit_mode == "set":
        query["last_view_at"] = {"$not": {"$gt": last.ts}}  # missing, null, earlier or the same instant
        update["$set"].update(exit_)
    else:
        query["last_view_at"] = {"$gt": last.ts}
        update["$setOnInsert"].update(exit_)
    return query, update


def span_after(group: SessionGroup, modes: tuple[Mode, Mode], known: ViewSpan | None) -> ViewSpan | None:
    """What the visit holds after ``group_update(group, modes, ...)`` applied, as far as known.

    :return: the new :class:`ViewSpan` (with "keep" and no hint, the group's first view is an upper
        bound of the stored one: a later guess may miss once and be corrected), or ``known`` when
        the group has no page view.
    """
    first, last = group.first_view, group.last_view
    if first is None or last is None:
        return known
    entry_mode, exit_mode = modes
    stored_first = known.first if known is not None and entry_mode == "keep" and known.first is not None else first.ts
    stored_last = known.last if known is not None and exit_mode == "keep" and known.last is not None else last.ts
    return ViewSpan(stored_first, stored_last)
