"""``footfall.log_input``: plain and gzip files (by magic bytes or by name) and standard input."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from footfall.log_input import open_log

LINES = b"first line\nsecond line\r\nthird, no newline"


@pytest.mark.parametrize(("name", "compress"), [
    pytest.param("access.log", False, id="plain"),
    pytest.param("access.log.1", True, id="gzip recognised by its magic bytes"),
    pytest.param("access.log.2.gz", True, id="gzip with a .gz name"),
])
def test_files(tmp_path: Path, name: str, compress: bool) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(LINES) if compress else LINES)
    with open_log(path) as source:
        assert list(source.lines) == LINES.splitlines(keepends=True)
        assert (source.size, source.compressed) == (path.stat().st_size, compress)
        assert source.position() == path.stat().st_size


@pytest.mark.parametrize("compress", [pytest.param(False, id="plain"), pytest.param(True, id="gzip")])
def test_standard_input(compress: bool) -> None:
    stream = io.BytesIO(gzip.compress(LINES) if compress else LINES)
    with open_log("-", stdin=stream) as source:
        assert list(source.lines) == LINES.splitlines(keepends=True)
        assert (source.size, source.compressed) == (None, compress)
    assert not stream.closed, "standard input is not ours to close"


def test_a_gz_name_that_is_not_gzip_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "access.log.gz"
    path.write_bytes(LINES)
    with open_log(path) as source, pytest.raises(gzip.BadGzipFile):
        list(source.lines)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    with open_log(path) as source:
        assert list(source.lines) == []


def test_standard_input_stays_open_after_collection() -> None:
    import gc

    stream = io.BytesIO(LINES)
    with open_log("-", stdin=stream) as source:
        list(source.lines)
    gc.collect()
    assert not stream.closed
