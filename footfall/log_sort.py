"""Sorting more records than fit in memory: an external merge sort (sorted runs on disk, merged).

The importer takes a log's page views in time order whatever order the file holds (issue 2), and a
log may be larger than memory. :class:`ExternalSort` keeps at most ``run_size`` records in memory:
each time that many have been added they are sorted and written to a temporary file (a *run*), and
:meth:`ExternalSort.sorted` merges the runs with :func:`heapq.merge`, reading each run a block at a
time. This is the textbook external merge sort (Knuth, *The Art of Computer Programming* vol. 3,
§5.4); Python's own ``heapq.merge`` documentation names it as the use case. The result is exactly
``sorted(records)``: no window, no approximation.

Records are any picklable values that compare with each other (the importer uses tuples whose
second item is the line number, so two records never compare equal past it).
"""

from __future__ import annotations

import heapq
import pickle
import shutil
import tempfile
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

__all__ = ["ExternalSort", "count_distinct"]

T = TypeVar("T")
BLOCK = 1024  # records per pickle frame in a run file (and read back at a time per run while merging)


class ExternalSort(Generic[T]):
    """Collect records with :meth:`add`, then iterate them in sorted order with :meth:`sorted`.

    At most ``run_size`` records (plus one block per run while merging) are held in memory at once.
    Use as a context manager, or call :meth:`close`, to remove the temporary run files.

    :param run_size: records kept in memory before a run is written (≥ 1).
    :param directory: where the temporary directory for runs is made (``None``: the system's
        temporary directory, ``TMPDIR``).
    :param unique: keep each distinct record once (within a run through a set, across runs while
        merging): :func:`count_distinct` uses it.
    :raises ValueError: ``run_size`` is less than 1.
    """

    def __init__(self, run_size: int = 100_000, *, directory: str | Path | None = None,
                 unique: bool = False) -> None:
        if run_size < 1:
            raise ValueError(f"run_size must be at least 1, got {run_size}")
        self.run_size = run_size
        self.unique = unique
        self._directory = directory
        self._tmp: Path | None = None
        self._buffer: list[T] | set[T] = set() if unique else []
        self._runs: list[Path] = []
        self.added = 0  # records passed to add()
        self.peak_buffered = 0  # the most records held in memory at once (for tests)

    @property
    def runs(self) -> int:
        """How many runs have been written to disk so far."""
        return len(self._runs)

    def add(self, record: T) -> None:
        """Add one record; write a run when ``run_size`` records are held.

        :raises OSError: a run cannot be written (disk full, no temporary directory).
        """
        if isinstance(self._buffer, set):
            self._buffer.add(record)
        else:
            self._buffer.append(record)
        self.added += 1
        held = len(self._buffer)
        if held > self.peak_buffered:
            self.peak_buffered = held
        if held >= self.run_size:
            self._spill()

    def _spill(self) -> None:
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="footfall-sort-", dir=self._directory))
        path = self._tmp / f"run-{len(self._runs):06d}"
        records = sorted(self._buffer)  # type: ignore[type-var]
        with path.open("wb") as run:
            for start in range(0, len(records), BLOCK):
                pickle.dump(records[start:start + BLOCK], run, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(path)
        self._buffer = set() if self.unique else []

    @staticmethod
    def _read(path: Path) -> Iterator[Any]:
        with path.open("rb") as run:
            yield from _blocks(run)

    def sorted(self) -> Iterator[T]:
        """All records added, in ascending order (each distinct one once with ``unique``).

        Call it once, after the last :meth:`add`. Without runs on disk it sorts in memory.

        :return: an iterator; it reads the runs as it goes.
        :raises OSError: a run cannot be read back.
        """
        if not self._runs:
            merged: Iterator[T] = iter(sorted(self._buffer))  # type: ignore[type-var]
        else:
            if self._buffer:
                self._spill()
            merged = heapq.merge(*(self._read(path) for path in self._runs))
        if not self.unique:
            return merged
        return _without_repeats(merged)

    def close(self) -> None:
        """Remove the run files (safe to call more than once)."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._runs = []

    def __enter__(self) -> ExternalSort[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _blocks(run: IO[bytes]) -> Iterator[Any]:
    while True:
        try:
            block = pickle.load(run)  # noqa: S301 - our own temporary file, written just before
        except EOFError:
            return
        yield from block


def _without_repeats(records: Iterator[T]) -> Iterator[T]:
    sentinel: Any = object()
    previous = sentinel
    for record in records:
        if previous is sentinel or record != previous:
            yield record
        previous = record


def count_distinct(sorter: ExternalSort[Hashable]) -> int:
    """How many distinct records a ``unique`` :class:`ExternalSort` holds (consumes it).

    :param sorter: made with ``unique=True``.
    :return: the number of distinct records added.
    :raises ValueError: ``sorter`` is not ``unique``.
    """
    if not sorter.unique:
        raise ValueError("count_distinct needs an ExternalSort made with unique=True")
    return sum(1 for _ in sorter.sorted())
