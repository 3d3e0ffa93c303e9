"""``footfall rollups check``: the stored rollups compared with the raw collections."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pymongo.database import Database

from footfall.stores.cells import (
    FIRST_SEEN,
)
from footfall.stores.rollup_build import day_bounds, rollup_sites
from footfall.stores.rollup_read import (
    ALL_KINDS,
    DAY,
    HourCells,
    cells_from_docs,
    compute_hours,
    merge_cells,
    read_docs,
)

__all__ = ["Difference", "check"]


@dataclass(frozen=True)
class Difference:
    """A stored rollup that differs from the raw collections: which, and both sides (decoded summaries)."""

    site: str
    level: str
    at: datetime
    kind: str
    stored: str
    raw: str


def _describe(kind: str, cells: HourCells) -> dict[Any, Any]:
    if kind == FIRST_SEEN:
        return {"first_seen": sorted(cells.first_seen)}
    rows = cells.kinds.get(kind, {})
    return {value: (c.visits, c.bounces, c.duration_ms, c.page_views, c.events, sorted(c.visitors),
                    sorted(c.repeats.items())) for value, c in rows.items()}


def check(db: Database, first: date, last: date, site: str | None = None,
          progress: Callable[[int], None] | None = None) -> list[Difference]:
    """Compare the stored rollups of UTC days ``first``..``last`` with the raw collections
    (``footfall rollups check``): every hour and day document, every kind.

    Hours still marked dirty are compared too (a difference there is the builder not having caught up
    yet; queries read those hours raw).

    :return: the differences (empty: the rollups equal the raw collections).
    :raises ValueError: ``last`` is before ``first``. :raises StoreUnavailable: MongoDB did not answer.
    """
    start, end = day_bounds(first, last)
    differences: list[Difference] = []
    for name in rollup_sites(db, site):
        day = start
        while day < end:
            raw = compute_hours(db, name, day, day + DAY)
            stored = cells_from_docs(read_docs(db, name, ALL_KINDS, "hour", day, day + DAY))
            stored_day = cells_from_docs(read_docs(db, name, ALL_KINDS, "day", day, day + DAY)).get(day, HourCells())
            pairs = [("hour", hour, stored.get(hour, HourCells()), cells) for hour, cells in raw.items()]
            pairs.append(("day", day, stored_day, merge_cells(raw.values())))
            for level, at, have, want in pairs:
                for kind in ALL_KINDS:
                    a, b = _describe(kind, have), _describe(kind, want)
                    if a != b:
                        differences.append(Difference(name, level, at, kind, repr(a)[:300], repr(b)[:300]))
            if progress is not None:
                progress(24)
            day += DAY
    return differences
