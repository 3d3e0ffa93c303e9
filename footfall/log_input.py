"""Where ``footfall import-log`` reads from: a file, gzip-compressed or not, or standard input.

Compression is recognised by the gzip magic bytes ``1f 8b`` (RFC 1952 §2.3.1) or a ``.gz`` name,
so ``access.log.1.gz`` from logrotate and ``zcat``-less pipes (``cat access.log.gz | footfall
import-log -``) both work. The size reported for progress is the size on disk (compressed, for a
gzip file), and :meth:`LogSource.position` counts the same bytes, so an ETA can be computed from it.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["GZIP_MAGIC", "STDIN", "LogSource", "open_log"]

GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952, section 2.3.1: ID1 ID2
STDIN = "-"


@dataclass(slots=True)
class LogSource:
    """An opened log.

    :ivar lines: the log's lines as bytes, each with its ``\\n`` (the last one may lack it).
    :ivar size: bytes on disk (compressed for gzip), ``None`` for standard input or a pipe.
    :ivar compressed: whether the bytes are gzip-decompressed on the way.
    """

    lines: IO[bytes]
    size: int | None
    compressed: bool
    _raw: IO[bytes]

    def position(self) -> int | None:
        """Bytes of the underlying file consumed so far (read ahead by at most one buffer), or
        ``None`` when it cannot tell (a pipe)."""
        try:
            return self._raw.tell()
        except (OSError, ValueError):
            return None


def _is_gzip(raw: io.BufferedReader[Any], name: str) -> bool:
    return name.endswith(".gz") or raw.peek(2)[:2] == GZIP_MAGIC


@contextlib.contextmanager
def open_log(path: str | Path, *, stdin: IO[bytes] | None = None) -> Iterator[LogSource]:
    """Open a log for reading, decompressing gzip on the fly.

    :param path: a file, or ``"-"`` for standard input.
    :param stdin: the binary stream read for ``"-"`` (default ``sys.stdin.buffer``).
    :return: a context manager giving the :class:`LogSource`; the file is closed on exit
        (standard input is left open).
    :raises OSError: the file cannot be opened. Reading a corrupt gzip stream raises
        :class:`gzip.BadGzipFile` (an :class:`OSError`) or :class:`EOFError` (truncated).
    """
    if str(path) == STDIN:
        stream: IO[bytes] = stdin if stdin is not None else sys.stdin.buffer
        size = None
        owned = False
        name = ""
    else:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
        size = os.fstat(stream.fileno()).st_size
        owned = True
        name = str(path)
    raw = stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream)  # type: ignore[type-var]
    try:
        if size is not None and not raw.seekable():
            size = None  # a named pipe or a device
        if _is_gzip(raw, name):
            lines: IO[bytes] = io.BufferedReader(gzip.GzipFile(fileobj=raw, mode="rb"), 1 << 20)  # type: ignore[arg-type]
            yield LogSource(lines, size, True, raw)
        else:
            yield LogSource(raw, size, False, raw)
    finally:
        if owned:
            stream.close()
        elif raw is not stream:
            raw.detach()  # a wrapper of ours around the caller's stream: leave that stream open
