"""Sampling profiles with py-spy (``.venv/bin/pip install py-spy``), summarised as text.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;... count``); the summary
gives each function's inclusive share of the samples (time spent in it and below it) and its self
share (time at the top of the stack). Only active threads are sampled, so the shares are of the
process's busy time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Profile", "find_py_spy", "start_py_spy", "read_profile"]

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")
# Entry and dispatch frames that sit under everything: left out of the tables.
_PLUMBING = ("<frozen", "runpy", "click/", "threading.py", "concurrent/futures/", "gunicorn/arbiter.py",
             "gunicorn/app/", "gunicorn/workers/base.py", "footfall/__main__.py", "footfall/cli.py", "<module>",
             "uvicorn/main.py", "uvicorn/_compat.py", "uvicorn/server.py", "asyncio/runners.py")


def find_py_spy() -> str | None:
    """Path of ``py-spy`` beside this Python or on ``PATH``, or ``None``."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def start_py_spy(pid: int, seconds: float, out: Path, rate: int = 250, *,
                 nonblocking: bool = True) -> subprocess.Popen[bytes]:
    """Sample ``pid`` for ``seconds`` into ``out``, by default without pausing it (``--nonblocking``).

    :param nonblocking: ``False`` pauses the process for each sample: slower, but the stacks are
        whole. An asyncio worker needs it: read while it runs, its coroutine stacks come out torn
        (under uvicorn with uvloop only about a third of the samples reached the event loop).
    :raises FileNotFoundError: py-spy is not installed.
    """
    py_spy = find_py_spy()
    if py_spy is None:
        raise FileNotFoundError("py-spy is not installed: .venv/bin/pip install py-spy")
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
            "--format", "raw", "--output", str(out), *(["--nonblocking"] if nonblocking else [])]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def _name(frame: str) -> str:
    """``func (file:line)`` → ``func (file)``: a function's samples are added up over its lines."""
    match = _FRAME.match(frame.strip())
    return f"{match['func']} ({match['file']})" if match else frame.strip()


@dataclass(frozen=True)
class Profile:
    """A summarised py-spy profile.

    :ivar inclusive: function → share of samples with it on the stack (0..1).
    :ivar own: function → share of samples with it on top.
    """

    label: str
    samples: int
    inclusive: dict[str, float]
    own: dict[str, float]

    def table(self, top: int = 18, floor: float = 0.02) -> str:
        """Markdown: the top functions by inclusive share (entry and dispatch frames left out), then by self."""
        lines = [f"**{self.label}** ({self.samples} samples)", "", "| inclusive | self | function |", "|---:|---:|---|"]
        rows = [(name, share) for name, share in self.inclusive.items()
                if share >= floor and not any(part in name for part in _PLUMBING)]
        for name, share in sorted(rows, key=lambda row: -row[1])[:top]:
            lines.append(f"| {share:.0%} | {self.own.get(name, 0.0):.0%} | `{name}` |")
        lines += ["", "Top self time:", ""]
        for name, share in sorted(self.own.items(), key=lambda row: -row[1])[:8]:
            lines.append(f"- {share:.0%} `{name}`")
        return "\n".join(lines)


def read_profile(path: Path, label: str) -> Profile | None:
    """Summarise a raw py-spy file; ``None`` when it is missing or empty."""
    if not path.exists():
        return None
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_name(frame) for frame in stack.split(";")]
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
    if not total:
        return None
    return Profile(label, total, {k: v / total for k, v in inclusive.items()}, {k: v / total for k, v in own.items()})
