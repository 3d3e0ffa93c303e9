"""Answering the dashboard from the rollups (:mod:`footfall.stores.rollup_build`), exactly.

A range ``[start, end)`` (or each bucket of a time series) is tiled by *pieces*: stored UTC days that
lie wholly inside it and hold no dirty hour, and UTC hours for the rest. Clean hours are read from
the stored hour documents; dirty hours (:func:`~footfall.stores.rollup_build.dirty_hours`: raw data
written since they were last built) are computed from the raw collections on the spot with the very
code the builder uses. The pieces' cells are merged (:class:`~footfall.stores.cells.Cell`): sums add
up, visitor bitmaps are united, so unique visitors are distinct over the whole range; new visits use
the bitmap of the visitors first seen at or after the range's start.

The rollups answer when the query names one site whose history is built, every range and bucket edge
is a whole UTC hour (any zone with whole-hour offsets), at most :data:`MAX_DIRTY_HOURS` hours of the
range are dirty, and the filter is empty or (for the summary and the time series) one ``==`` clause
with one value. Anything else returns ``None`` and the caller runs the raw aggregation; every answer
says which (``"source": "rollups" | "raw"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pyroaring import BitMap

from footfall.dashboard_queries.filters import DIMENSIONS, Clause
from footfall.dashboard_queries.periods import on_whole_hours
from footfall.stores.cells import FIRST_SEEN, TOTAL, Cell, Value, decode_bitmap
from footfall.stores.rollup_build import dirty_hours, is_built
from footfall.stores.rollup_read import ALL_VALUES, HourCells, cells_from_docs, compute_hours, read_docs

__all__ = ["MAX_DIRTY_HOURS", "Unanswerable", "Selection", "select", "range_cell", "range_rows", "new_visitors_from",
           "bucket_cells", "summary_row", "Tally", "range_tallies", "top_tallies"]

MAX_DIRTY_HOURS = 48  # more dirty hours in a range than this (the builder far behind): read it raw
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Unanswerable(Exception):
    """The rollups cannot answer after all (an hour read raw has a visit whose visitor has no number
    yet): the caller runs the raw aggregation."""


class Selection:
    """What a rollup answer reads: the site, the kind (``"total"`` or a dimension), the value (for a
    filter), the site's dirty hours (read once per answer), and ``one_value``: read only the value's
    row (a filter) rather than every row (a breakdown)."""

    def __init__(self, db: Database, site: str, kind: str, value: Value, dirty: set[datetime]) -> None:
        self.db, self.site, self.kind, self.value, self.dirty = db, site, kind, value, dirty
        self.one_value = kind != TOTAL  # a filter: only the row of ``value`` is read


def select(db: Database, site: str | None, clauses: Sequence[Clause], *instants: datetime,
           breakdown: bool = False) -> Selection | None:
    """Whether the rollups can answer, and what they read.

    :param site: the query's site (``None``: every site, which only the raw path answers).
    :param clauses: the filter; :param instants: every range and bucket edge.
    :param breakdown: a breakdown (which takes no filter from the rollups).
    :return: a :class:`Selection`, or ``None`` for the raw path.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    if site is None or not on_whole_hours(*instants):
        return None
    kind, value = TOTAL, None
    if clauses:
        if breakdown or len(clauses) != 1:
            return None
        (clause,) = clauses
        if clause.op != "==" or len(clause.values) != 1:
            return None
        value = clause.values[0]
        if value is None and DIMENSIONS[clause.dimension].page_level:  # "(none)" of an array: raw semantics
            return None
        kind = clause.dimension
    if not is_built(db, site):
        return None
    dirty = dirty_hours(db, site)
    lo, hi = min(instants), max(instants)
    if sum(1 for hour in dirty if lo <= hour < hi) > MAX_DIRTY_HOURS:
        return None
    return Selection(db, site, kind, value, dirty)


def _day_start(at: datetime) -> datetime:
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def _pieces(start: datetime, end: datetime, dirty: set[datetime]) -> tuple[list[datetime], list[datetime]]:
    """Tile ``[start, end)``: the clean whole UTC days inside it, and the remaining hours."""
    days: list[datetime] = []
    hours: list[datetime] = []
    at = start
    while at < end:
        if at.hour == 0 and at + DAY <= end and not any(at <= hour < at + DAY for hour in dirty):
            days.append(at)
            at += DAY
        else:
            hours.append(at)
            at += HOUR
    return days, hours


def _runs(hours: Sequence[datetime], gap: int = 24) -> list[tuple[datetime, datetime]]:
    """Sorted hours as ranges to read, joining runs less than ``gap`` hours apart."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(hours):
        if runs and hour - runs[-1][1] < HOUR * gap:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def _load(sel: Selection, kinds: tuple[str, ...], days: Sequence[datetime],
          hours: Sequence[datetime]) -> dict[datetime, HourCells]:
    """The cells of the pieces: stored days and clean hours read, dirty hours computed raw."""
    found: dict[datetime, HourCells] = {}
    value = sel.value if sel.kind != TOTAL and FIRST_SEEN not in kinds and sel.one_value else ALL_VALUES
    if days:
        stored = cells_from_docs(read_docs(sel.db, sel.site, kinds, "day", min(days), max(days) + DAY, value))
        found.update({day: stored.get(day, HourCells()) for day in days})
    clean = [hour for hour in hours if hour not in sel.dirty]
    for lo, hi in _runs(clean):
        stored = cells_from_docs(read_docs(sel.db, sel.site, kinds, "hour", lo, hi, value))
        found.update({hour: stored.get(hour, HourCells()) for hour in clean if lo <= hour < hi})
    for lo, hi in _runs([hour for hour in hours if hour in sel.dirty], gap=1):
        computed = compute_hours(sel.db, sel.site, lo, hi)
        if not all(cells.complete for cells in computed.values()):
            raise Unanswerable(f"an hour of {sel.site!r} from {lo:%Y-%m-%dT%H} has a visitor without a number")
        found.update(computed)
    return found


def range_rows(sel: Selection, start: datetime, end: datetime) -> dict[Value, Cell]:
    """The cells of ``[start, end)`` for the selection's kind, every value, merged over the range."""
    days, hours = _pieces(_utc(start), _utc(end), sel.dirty)
    merged: dict[Value, Cell] = {}
    for cells in _load(sel, (sel.kind,), days, hours).values():
        for value, cell in cells.kinds.get(sel.kind, {}).items():
            merged.setdefault(value, Cell()).merge(cell)
    return merged


@dataclass
class Tally:
    """One value's sums over a range with its visitor bitmaps not united yet: a breakdown ranks by
    the bounds (``most`` ≤ unique visitors ≤ ``total``) and unites only the bitmaps it must.

    :ivar parts: per bucket, a stored bitmap (bytes) or a computed one (:class:`~pyroaring.BitMap`).
    """

    visits: int = 0
    bounces: int = 0
    duration_ms: int = 0
    page_views: int = 0
    events: int = 0
    most: int = 0
    total: int = 0
    parts: list[bytes | BitMap] = field(default_factory=list)
    exact: int | None = None

    def add(self, visits: int, bounces: int, duration_ms: int, page_views: int, events: int, size: int,
            bitmap: bytes | BitMap | None) -> None:
        """Add one bucket's sums and bitmap (``size`` its cardinality)."""
        self.visits += visits
        self.bounces += bounces
        self.duration_ms += duration_ms
        self.page_views += page_views
        self.events += events
        self.most, self.total = max(self.most, size), self.total + size
        if bitmap is not None and size:
            self.parts.append(bitmap)

    def unique_visitors(self) -> int:
        """The exact number of distinct visitors: the size of the union of the parts (computed once)."""
        if self.exact is None:
            if len(self.parts) == 1 and isinstance(self.parts[0], BitMap):
                self.exact = len(self.parts[0])
            else:
                bitmaps = [p if isinstance(p, BitMap) else decode_bitmap(p) for p in self.parts]
                self.exact = len(BitMap.union(*bitmaps)) if len(bitmaps) > 1 else len(bitmaps[0]) if bitmaps else 0
        return self.exact


def range_tallies(sel: Selection, start: datetime, end: datetime) -> dict[Value, Tally]:
    """The :class:`Tally` of every value of the selection's kind over ``[start, end)``: stored rows
    are summed without decoding their bitmaps."""
    days, hours = _pieces(_utc(start), _utc(end), sel.dirty)
    tallies: dict[Value, Tally] = {}
    clean = [hour for hour in hours if hour not in sel.dirty]
    docs = read_docs(sel.db, sel.site, (sel.kind,), "day", min(days), max(days) + DAY) if days else []
    for lo, hi in _runs(clean):
        docs += read_docs(sel.db, sel.site, (sel.kind,), "hour", lo, hi)
    chosen = {("day", day) for day in days} | {("hour", hour) for hour in clean}
    for doc in docs:
        if (doc["level"], _utc(doc["at"])) not in chosen:
            continue
        for row in doc["rows"]:
            size = row.get("n")
            bitmap = row.get("u")
            if size is None:  # written before "n" existed
                size = len(decode_bitmap(bitmap)) if bitmap is not None else 0
            tally = tallies.get(row["k"])
            if tally is None:
                tally = tallies[row["k"]] = Tally()
            tally.add(row.get("v", 0), row.get("b", 0), row.get("d", 0), row.get("p", 0), row.get("e", 0), size,
                      None if bitmap is None else bytes(bitmap))
    for lo, hi in _runs([hour for hour in hours if hour in sel.dirty], gap=1):
        computed = compute_hours(sel.db, sel.site, lo, hi)
        if not all(cells.complete for cells in computed.values()):
            raise Unanswerable(f"an hour of {sel.site!r} from {lo:%Y-%m-%dT%H} has a visitor without a number")
        for cells in computed.values():
            for value, cell in cells.kinds.get(sel.kind, {}).items():
                tally = tallies.setdefault(value, Tally())
                tally.add(cell.visits, cell.bounces, cell.duration_ms, cell.page_views, cell.events,
                          cell.unique_visitors, cell.visitors)
    return tallies


def _order(value: Value) -> tuple[bool, str]:
    return value is not None, value or ""


def top_tallies(tallies: dict[Value, Tally], by_page_views: bool, count: int | None) -> list[tuple[Value, Tally]]:
    """The first ``count`` values (every value when ``None``) in the breakdown's order: unique
    visitors, then page views, descending (page views first when ``by_page_views``), then the value.

    Exact with few unions: values are taken in order of their upper bound of unique visitors, and
    once ``count`` exact ones are known, a value whose upper bound is below the last of them cannot
    rank before it (the threshold algorithm). Ranking by page views needs unions only for the ties
    at the boundary.
    """
    items = list(tallies.items())
    chosen: list[tuple[Value, Tally]]
    if count is None or count >= len(items):
        chosen = items
    elif by_page_views:
        items.sort(key=lambda item: -item[1].page_views)
        boundary = items[count - 1][1].page_views
        chosen = [item for item in items if item[1].page_views >= boundary]
    else:
        items.sort(key=lambda item: -item[1].total)
        chosen = []
        best: list[int] = []
        for value, tally in items:
            if len(best) >= count and tally.total < best[count - 1]:
                break
            chosen.append((value, tally))
            best = sorted([*best, tally.unique_visitors()], reverse=True)[:count]
    if by_page_views:
        key = lambda item: (-item[1].page_views, -item[1].unique_visitors(), *_order(item[0]))  # noqa: E731
    else:
        key = lambda item: (-item[1].unique_visitors(), -item[1].page_views, *_order(item[0]))  # noqa: E731
    return sorted(chosen, key=key)[:count]


def range_cell(sel: Selection, start: datetime, end: datetime) -> Cell:
    """The one cell of ``[start, end)`` for the selection's kind and value."""
    return range_rows(sel, start, end).get(sel.value, Cell())


def bucket_cells(sel: Selection, edges: Sequence[datetime]) -> list[Cell]:
    """One merged cell per bucket ``[edges[i], edges[i + 1])`` for the selection's kind and value.

    A stored day is used only inside one bucket; every piece is read in a few range reads.
    """
    edges = [_utc(edge) for edge in edges]
    tiles = [_pieces(edges[i], edges[i + 1], sel.dirty) for i in range(len(edges) - 1)]
    loaded = _load(sel, (sel.kind,), [d for days, _ in tiles for d in days], [h for _, hours in tiles for h in hours])
    result = []
    for days, hours in tiles:
        cell = Cell()
        for at in (*days, *hours):
            part = loaded[at].kinds.get(sel.kind, {}).get(sel.value)
            if part is not None:
                cell.merge(part)
        result.append(cell)
    return result


def new_visitors_from(sel: Selection, start: datetime, horizon: datetime) -> BitMap:
    """The numbers of the visitors first seen at or after ``start``, for
    :meth:`~footfall.stores.cells.Cell.new_visits`: pieces up to the day after ``horizon`` (and past
    every dirty hour), then every stored day after that."""
    start, horizon = _utc(start), _utc(horizon)
    first_day = _day_start(start) + (DAY if start != _day_start(start) else timedelta(0))
    end = max(_day_start(horizon) + DAY, first_day, *(hour + HOUR for hour in sel.dirty))
    days, hours = _pieces(start, end, sel.dirty)
    bitmap = BitMap()
    for cells in _load(sel, (FIRST_SEEN,), days, hours).values():
        bitmap |= cells.first_seen
    later = read_docs(sel.db, sel.site, (FIRST_SEEN,), "day", end, None)  # first seen after the horizon
    for cells in cells_from_docs(later).values():
        bitmap |= cells.first_seen
    return bitmap


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def summary_row(sel: Selection, start: datetime, end: datetime) -> dict[str, Any]:
    """The sums the summary's metrics are made of, for ``[start, end)``: ``visits``, ``visitors``,
    ``bounces``, ``duration_ms``, ``new``, ``page_views`` (as :func:`~footfall.dashboard_queries.summary.summary_query`
    returns them)."""
    cell = range_cell(sel, start, end)
    new = cell.new_visits(new_visitors_from(sel, start, end)) if cell.visits else 0
    return {"visits": cell.visits, "visitors": cell.unique_visitors, "bounces": cell.bounces,
            "duration_ms": cell.duration_ms, "new": new, "page_views": cell.page_views}
