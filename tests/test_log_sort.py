"""``footfall.log_sort``: the external merge sort the importer orders page views with.

Memory is bounded by construction (at most ``run_size`` records held); these tests check it with a
tiny ``run_size`` through ``peak_buffered``, not with a timer or a memory probe.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from footfall.log_sort import ExternalSort, count_distinct


@pytest.mark.parametrize("run_size", [
    pytest.param(1, id="a run per record"),
    pytest.param(3, id="tiny runs"),
    pytest.param(1000, id="all in memory, no run written"),
])
def test_sorted_is_exactly_sorted_and_holds_at_most_run_size(run_size: int, tmp_path: Path) -> None:
    rng = random.Random(11)
    records = [(rng.randrange(50), number, f"line {number}") for number in range(500)]
    with ExternalSort[tuple[int, int, str]](run_size, directory=tmp_path) as sorter:
        for record in records:
            sorter.add(record)
        assert sorter.peak_buffered <= run_size
        assert sorter.runs == (0 if run_size >= len(records) else len(records) // run_size)
        assert list(sorter.sorted()) == sorted(records)
        assert sorter.added == len(records)


def test_ties_keep_the_second_key_order_across_runs(tmp_path: Path) -> None:
    """Records with the same time come out in line order, wherever the runs cut them."""
    records = [(5, 3, "c"), (1, 0, "a"), (5, 1, "b"), (0, 4, "d"), (5, 2, "e"), (5, 0, "f")]
    with ExternalSort[tuple[int, int, str]](2, directory=tmp_path) as sorter:
        for record in records:
            sorter.add(record)
        assert [r[2] for r in sorter.sorted()] == ["d", "a", "f", "b", "e", "c"]


def test_run_files_are_removed_on_close(tmp_path: Path) -> None:
    with ExternalSort[int](2, directory=tmp_path) as sorter:
        for number in range(7, 0, -1):
            sorter.add(number)
        assert any(tmp_path.iterdir())
        assert list(sorter.sorted()) == list(range(1, 8))
    assert not any(tmp_path.iterdir())


def test_count_distinct_across_runs(tmp_path: Path) -> None:
    keys = [("203.0.113.7", "A"), ("203.0.113.7", "B"), ("198.51.100.1", "A")] * 5 + [("192.0.2.1", "")]
    with ExternalSort[tuple[str, str]](2, directory=tmp_path, unique=True) as sorter:
        for key in keys:
            sorter.add(key)
        assert sorter.peak_buffered <= 2
        assert count_distinct(sorter) == 4  # type: ignore[arg-type]


def test_count_distinct_needs_unique(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unique=True"):
        count_distinct(ExternalSort[int](2, directory=tmp_path))  # type: ignore[arg-type]


def test_run_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ExternalSort[int](0)
