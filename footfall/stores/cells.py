"""Rollup cells: mergeable partial aggregates that give every dashboard figure exactly. Pure: no I/O.

A :class:`Cell` sums what the dashboard shows for one bucket of time (a UTC hour or day) and,
optionally, one value of a dimension. Merging the cells of the buckets that tile a range gives the
range's figures, *exactly* as the raw aggregations define them (README, "Definitions"):

- ``visits``, ``bounces``, ``duration_ms`` (a bounce counting 0), ``page_views``, ``events``: sums;
- ``visitors``: the visitor numbers (``visitors.visitor_number``, one per visitor per site, forever)
  of the visits, as a Roaring bitmap (``pyroaring``): unique visitors over a range are the size of the
  *union* of its cells' bitmaps, never a sum (ClickHouse's ``groupBitmap``, Apache Pinot's
  ``DISTINCTCOUNTBITMAP`` do the same);
- ``repeats``: for a visitor with more than one visit in the cell, how many beyond the first. With the
  bitmap this is each visitor's exact number of visits, which :meth:`Cell.new_visits` needs: new visits
  of a range are the visits whose visitor was first seen at or after the range's start, and which
  visitors those are is known only at query time (a bitmap of first-seen visitors, see
  :func:`footfall.stores.rollup_build`).

:func:`cells_of` builds an hour's cells from its raw facts (:class:`VisitFacts`, :class:`ViewFacts`,
event names) with the same rules as the raw pipelines in :mod:`footfall.dashboard_queries`, which the
tests check on hand-built and real data.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bson.binary import Binary
from pyroaring import BitMap

__all__ = ["Cell", "VisitFacts", "ViewFacts", "TOTAL", "FIRST_SEEN", "VISIT_DIMENSIONS", "ARRAY_DIMENSIONS",
           "KINDS", "cells_of", "merge_rows", "encode_rows", "decode_rows", "encode_bitmap", "decode_bitmap"]

TOTAL = "total"  # the kind of the cells without a dimension
FIRST_SEEN = "first_seen"  # the kind of the bitmaps of visitors first seen in a bucket
#: visit-level dimensions and the session field that holds each (``source`` is computed)
VISIT_DIMENSIONS: dict[str, str] = {
    "entry_page": "entry_path", "exit_page": "exit_path", "referrer": "referrer_host", "source": "",
    "utm_source": "utm_source", "utm_medium": "utm_medium", "utm_campaign": "utm_campaign",
    "country": "country", "device": "device", "browser": "browser", "os": "os",
}
#: page-level dimensions: the session array, and the page view's own field (``None``: the visit's)
ARRAY_DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "page": ("paths", "path"), "route": ("routes", "route"), "event": ("event_names", None),
}
KINDS: tuple[str, ...] = (TOTAL, *VISIT_DIMENSIONS, *ARRAY_DIMENSIONS)
Value = str | None


@dataclass
class Cell:
    """The partial aggregate of one bucket (and one dimension value).

    :ivar visits: visits started in the bucket. :ivar bounces: those with one page view and no event.
    :ivar duration_ms: sum of ``last_seen_at - started_at`` (milliseconds, a bounce counting 0).
    :ivar page_views: page views whose ``ts`` is in the bucket. :ivar events: custom events likewise.
    :ivar visitors: the visitors' numbers. :ivar repeats: visitor number → visits beyond its first.
    """

    visits: int = 0
    bounces: int = 0
    duration_ms: int = 0
    page_views: int = 0
    events: int = 0
    visitors: BitMap = field(default_factory=BitMap)
    repeats: dict[int, int] = field(default_factory=dict)

    def add_visit(self, number: int, bounce: bool, duration_ms: int) -> None:
        """Count one visit of visitor ``number`` (its duration in milliseconds, 0 for a bounce)."""
        self.visits += 1
        self.bounces += int(bounce)
        self.duration_ms += duration_ms
        if number in self.visitors:
            self.repeats[number] = self.repeats.get(number, 0) + 1
        else:
            self.visitors.add(number)

    def merge(self, other: Cell) -> None:
        """Add ``other`` into this cell (sums; the union of visitors; visits per visitor add up)."""
        self.visits += other.visits
        self.bounces += other.bounces
        self.duration_ms += other.duration_ms
        self.page_views += other.page_views
        self.events += other.events
        if other.repeats or other.visitors:
            for number, extra in other.repeats.items():
                self.repeats[number] = self.repeats.get(number, 0) + extra
            for number in self.visitors & other.visitors:  # a visitor in both: one more visit beyond its first
                self.repeats[number] = self.repeats.get(number, 0) + 1
            self.visitors |= other.visitors

    def new_visits(self, first_seen_from_start: BitMap) -> int:
        """Visits whose visitor is in ``first_seen_from_start`` (first seen at or after the range's start).

        :param first_seen_from_start: the numbers of the visitors first seen at or after the start.
        :return: how many of this cell's visits are theirs.
        """
        new = self.visitors & first_seen_from_start
        return len(new) + sum(extra for number, extra in self.repeats.items() if number in new)

    @property
    def unique_visitors(self) -> int:
        """Distinct visitors of the cell."""
        return len(self.visitors)

    def is_empty(self) -> bool:
        """Nothing counted at all."""
        return not (self.visits or self.page_views or self.events)


@dataclass(frozen=True, slots=True)
class VisitFacts:
    """What a visit contributes to its start's bucket.

    :ivar number: its visitor's number (``visitors.visitor_number``).
    :ivar bounce: one page view and no custom event. :ivar duration_ms: 0 for a bounce.
    :ivar values: the visit's value of each visit-level dimension (``None``: no value).
    :ivar arrays: the visit's ``paths``, ``routes`` and ``event_names`` by dimension, as stored.
    """

    number: int
    bounce: bool
    duration_ms: int
    values: Mapping[str, Value]
    arrays: Mapping[str, tuple[Value, ...]]


@dataclass(frozen=True, slots=True)
class ViewFacts:
    """What a page view contributes to its ``ts``'s bucket.

    :ivar path: its own path; :ivar route: its own route (``None``: none).
    :ivar visit_values: its visit's visit-level values as :class:`VisitFacts` has them, or ``None``
        when its visit is not stored (then it counts in the total and in ``page`` / ``route`` only,
        as the raw pipelines' join drops it elsewhere).
    :ivar visit_events: its visit's ``event_names``, as stored.
    """

    path: Value
    route: Value
    visit_values: Mapping[str, Value] | None
    visit_events: tuple[Value, ...] = ()


def cells_of(visits: Iterable[VisitFacts], views: Iterable[ViewFacts],
             event_names: Iterable[Value]) -> dict[str, dict[Value, Cell]]:
    """The cells of one bucket: ``{kind: {value: Cell}}``, ``kind`` in :data:`KINDS` (the total's
    only value is ``None``).

    Rules, as the raw pipelines count (:mod:`footfall.dashboard_queries.breakdown`): a visit counts
    under each of its visit-level values and under each element of its page-level arrays; a page
    view counts under its own path and route, and under its visit's visit-level values and each of
    its visit's event names; a custom event counts under its name.
    """
    cells: dict[str, dict[Value, Cell]] = {kind: defaultdict(Cell) for kind in KINDS}
    total = cells[TOTAL][None]
    for visit in visits:
        total.add_visit(visit.number, visit.bounce, visit.duration_ms)
        for kind, value in visit.values.items():
            cells[kind][value].add_visit(visit.number, visit.bounce, visit.duration_ms)
        for kind, elements in visit.arrays.items():
            for element in elements:
                cells[kind][element].add_visit(visit.number, visit.bounce, visit.duration_ms)
    for view in views:
        total.page_views += 1
        cells["page"][view.path].page_views += 1
        cells["route"][view.route].page_views += 1
        if view.visit_values is not None:
            for kind, value in view.visit_values.items():
                cells[kind][value].page_views += 1
            for name in view.visit_events:
                cells["event"][name].page_views += 1
    for name in event_names:
        total.events += 1
        cells["event"][name].events += 1
    kept = {kind: {value: cell for value, cell in values.items() if not cell.is_empty()}
            for kind, values in cells.items()}
    return {kind: values for kind, values in kept.items() if values}


def merge_rows(into: dict[Value, Cell], rows: Mapping[Value, Cell]) -> None:
    """Merge ``rows`` (value → cell) into ``into``, value by value (``into`` keeps its own cells)."""
    for value, cell in rows.items():
        mine = into.get(value)
        if mine is None:
            mine = into[value] = Cell()
        mine.merge(cell)


def encode_bitmap(bitmap: BitMap) -> Binary:
    """A bitmap as BSON binary (Roaring's portable serialization)."""
    return Binary(bitmap.serialize())


def decode_bitmap(data: bytes) -> BitMap:
    """The inverse of :func:`encode_bitmap`."""
    return BitMap.deserialize(bytes(data))


def encode_rows(rows: Mapping[Value, Cell]) -> list[dict[str, Any]]:
    """Cells as BSON: ``[{"k": value, "v", "b", "d", "p", "e", "u": bitmap, "n": its size, "r": repeats}]``, sorted
    by value (``None`` first), empty sums and repeats left out."""
    encoded = []
    for value in sorted(rows, key=lambda v: (v is not None, v or "")):
        cell = rows[value]
        row: dict[str, Any] = {"k": value}
        for key, number in (("v", cell.visits), ("b", cell.bounces), ("d", cell.duration_ms),
                            ("p", cell.page_views), ("e", cell.events)):
            if number:
                row[key] = number
        if cell.visitors:
            row["u"] = encode_bitmap(cell.visitors)
            row["n"] = len(cell.visitors)  # read without decoding the bitmap (breakdowns rank by it)
        if cell.repeats:
            flat = array("Q")
            for number, extra in sorted(cell.repeats.items()):
                flat.extend((number, extra))
            row["r"] = Binary(flat.tobytes())
        encoded.append(row)
    return encoded


def decode_rows(encoded: Iterable[Mapping[str, Any]]) -> dict[Value, Cell]:
    """The inverse of :func:`encode_rows`."""
    rows: dict[Value, Cell] = {}
    for row in encoded:
        repeats: dict[int, int] = {}
        if "r" in row:
            flat = array("Q")
            flat.frombytes(bytes(row["r"]))
            repeats = dict(zip(flat[::2], flat[1::2], strict=True))
        rows[row["k"]] = Cell(visits=row.get("v", 0), bounces=row.get("b", 0), duration_ms=row.get("d", 0),
                              page_views=row.get("p", 0), events=row.get("e", 0),
                              visitors=decode_bitmap(row["u"]) if "u" in row else BitMap(), repeats=repeats)
    return rows
