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
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pyroaring import BitMap

from footfall.dashboard_queries.filters import DIMENSIONS, Clause
from footfall.dashboard_queries.periods import on_whole_hours
from footfall.stores.cells import FIRST_SEEN, TOTAL, Cell, Value
from footfall.stores.rollup_build import (
    HourCells,
    cells_from_docs,
    compute_hours,
    dirty_hours,
    is_built,
    read_docs,
)

__all__ = ["MAX_DIRTY_HOURS", "Selection", "select", "range_cell", "range_rows", "new_visitors_from",
           "bucket_cells", "summary_row"]

MAX_DIRTY_HOURS = 48  # more dirty hours in a range than this (the builder far behind): read it raw
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


class Selection:
    """What a rollup answer reads: the site, the kind (``"total"`` or a dimension), the value (for a
    filter), and the site's dirty hours (read once per answer)."""

    def __init__(self, db: Database, site: str, kind: str, value: Value, dirty: set[datetime]) -> None:
        self.db, self.site, self.kind, self.value, self.dirty = db, site, kind, value, dirty


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
    if days:
        stored = cells_from_docs(read_docs(sel.db, sel.site, kinds, "day", min(days), max(days) + DAY))
        found.update({day: stored.get(day, HourCells()) for day in days})
    clean = [hour for hour in hours if hour not in sel.dirty]
    for lo, hi in _runs(clean):
        stored = cells_from_docs(read_docs(sel.db, sel.site, kinds, "hour", lo, hi))
        found.update({hour: stored.get(hour, HourCells()) for hour in clean if lo <= hour < hi})
    for lo, hi in _runs([hour for hour in hours if hour in sel.dirty], gap=1):
        found.update(compute_hours(sel.db, sel.site, lo, hi))
    return found


def range_rows(sel: Selection, start: datetime, end: datetime) -> dict[Value, Cell]:
    """The cells of ``[start, end)`` for the selection's kind, every value, merged over the range."""
    days, hours = _pieces(_utc(start), _utc(end), sel.dirty)
    merged: dict[Value, Cell] = {}
    for cells in _load(sel, (sel.kind,), days, hours).values():
        for value, cell in cells.kinds.get(sel.kind, {}).items():
            merged.setdefault(value, Cell()).merge(cell)
    return merged


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
