"""``footfall import-log`` at a real site's size: lines per second end to end and the importer's peak RSS.

    .venv/bin/python -m benchmarks.import_log                   # 1,000,000 lines, a few minutes
    .venv/bin/python -m benchmarks.import_log --lines 5000000   # the issue's 5-million-line log
    .venv/bin/python -m benchmarks.import_log --gzip            # the same log gzip-compressed

The log is synthesized from a real one (``tests/data/access-logs/semicomplete-2015-05.log``,
10,000 lines over four days, by default): copy *k* has every timestamp moved *k* × 4 days later
(whole days, so only the date text changes) and the third octet of every client IP moved by *k*
(mod 256), so each copy brings new visitors and the visit pattern of the real log repeats. The file
is written to a temporary directory and removed afterwards.

What is timed is the command a user runs, ``python -m footfall import-log FILE --quiet`` in a child
process, from its start to its exit (interpreter start, parsing, sorting, sessionizing, every write,
the summary), against the embedded default: SecantusDB's ``secantusd-py`` with its data on disk, and
Redis, started here once (``FOOTFALL_MONGODB_URI`` / ``FOOTFALL_REDIS_URL`` point the child at
them, so their RSS is not the importer's). The importer's peak RSS is the child's ``ru_maxrss``
from ``wait4``; the MongoDB-wire server's own peak (``VmHWM``) is reported beside it. The 1-, 5- and
15-minute load averages are printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from footfall.embedded import start_mongodb, start_redis

DEFAULT_SOURCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "access-logs" / "semicomplete-2015-05.log"
DEFAULT_LINES = 1_000_000
SHIFT_DAYS = 4  # per copy: longer than the source log's span, so copies do not overlap in time
_DATE = re.compile(rb"\[(\d{2}/[A-Za-z]{3}/\d{4}):")


def synthesize(source: Path, lines: int, out: IO[bytes]) -> int:
    """Write ``lines`` lines made of shifted copies of ``source`` to ``out``.

    :param source: a combined-format log.
    :param lines: how many lines to write.
    :param out: a binary stream.
    :return: the bytes written.
    """
    base = source.read_bytes().split(b"\n")
    if base and base[-1] == b"":
        base.pop()
    written = 0
    copy = 0
    remaining = lines
    while remaining > 0:
        for line in _shifted(base[:remaining], copy):
            out.write(line)
            written += len(line)
        remaining -= min(remaining, len(base))
        copy += 1
    return written


def _shifted(lines: list[bytes], copy: int) -> Iterator[bytes]:
    dates: dict[bytes, bytes] = {}
    for line in lines:
        match = _DATE.search(line)
        if match is None:  # the source's one unparseable line: kept as it is
            yield line + b"\n"
            continue
        date = match.group(1)
        if date not in dates:
            day = datetime.strptime(date.decode(), "%d/%b/%Y") + timedelta(days=SHIFT_DAYS * copy)
            dates[date] = day.strftime("%d/%b/%Y").encode()
        ip, _, rest = line.partition(b" ")
        octets = ip.split(b".")
        if len(octets) == 4 and all(part.isdigit() for part in octets):
            octets[2] = str((int(octets[2]) + copy) % 256).encode()
            ip = b".".join(octets)
        shifted = ip + b" " + rest
        yield shifted.replace(b"[" + date + b":", b"[" + dates[date] + b":", 1) + b"\n"


def _vm_hwm(pid: int) -> int | None:
    """Peak resident set of a process in bytes (Linux ``/proc/PID/status`` ``VmHWM``)."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used (Linux ``/proc/PID/stat`` fields 14 and 15)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _dirty() -> bool:
    try:
        return bool(subprocess.run(["git", "status", "--porcelain", "--", "footfall"], capture_output=True,
                                   text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return True


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures as a markdown list.

    :return: the process exit status (the import's).
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=DEFAULT_LINES, help="lines in the synthesized log")
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the real log to replicate")
    parser.add_argument("--gzip", action="store_true", help="write the log gzip-compressed (level 6)")
    parser.add_argument("--include-bots", action="store_true", help="pass --include-bots")
    parser.add_argument("--keep", type=Path, default=None, help="keep the temporary directory here")
    args = parser.parse_args(argv)
    commit, dirty = _git_commit(), _dirty()  # the code the child imports: read before it starts
    work = Path(tempfile.mkdtemp(prefix="footfall-import-bench-", dir=args.keep))
    load_before = os.getloadavg()
    mongodb = start_mongodb(work / "mongodb")
    redis_server = start_redis(None)
    try:
        log_path = work / ("access.log.gz" if args.gzip else "access.log")
        started = time.monotonic()
        with (gzip.open(log_path, "wb", compresslevel=6) if args.gzip else log_path.open("wb")) as out:
            raw_bytes = synthesize(args.source, args.lines, out)  # type: ignore[arg-type]
        synth_seconds = time.monotonic() - started
        env = {**os.environ, "FOOTFALL_MONGODB_URI": mongodb.url, "FOOTFALL_REDIS_URL": redis_server.url,
               "FOOTFALL_DATA_DIR": str(work / "data"), "TMPDIR": str(work)}
        command = [sys.executable, "-m", "footfall", "import-log", str(log_path), "--site", "bench", "--quiet"]
        if args.include_bots:
            command.append("--include-bots")
        server_cpu_before = _cpu_seconds(mongodb.process.pid)
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        summary = child.stdout.read().decode() if child.stdout else ""
        errors = child.stderr.read().decode() if child.stderr else ""
        server_peak = _vm_hwm(mongodb.process.pid)
        server_cpu_after = _cpu_seconds(mongodb.process.pid)
        load_after = os.getloadavg()
    finally:
        redis_server.stop()
        mongodb.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    code = os.waitstatus_to_exitcode(status)
    print(f"- command: `{' '.join(['.venv/bin/python', '-m', 'benchmarks.import_log', *(argv or sys.argv[1:])])}`")
    print(f"- commit: {commit}{' (uncommitted changes in footfall/)' if dirty else ''}")
    print(f"- machine: {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}")
    print(f"- load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"- log: {args.lines:,} lines, {raw_bytes / 1e6:,.1f} MB uncompressed"
          f"{f', {log_path.name}' if args.gzip else ''} (synthesized in {synth_seconds:.1f} s)")
    print(f"- import exit status: {code}")
    print(f"- import wall time: {seconds:.1f} s")
    print(f"- **lines/s end to end: {args.lines / seconds:,.0f}**")
    print(f"- **importer peak RSS: {usage.ru_maxrss / 1024:,.0f} MiB** (ru_maxrss of the import process)")
    print(f"- MongoDB-wire server peak RSS: {server_peak / 2**20:,.0f} MiB" if server_peak else
          "- MongoDB-wire server peak RSS: not measured")
    print(f"- importer CPU: user {usage.ru_utime:.1f} s, system {usage.ru_stime:.1f} s")
    if server_cpu_before is not None and server_cpu_after is not None:
        server_cpu = server_cpu_after - server_cpu_before
        print(f"- MongoDB-wire server CPU during the import: {server_cpu:.1f} s "
              f"({args.lines / server_cpu:,.0f} lines per server CPU second: the rate if it had a core to itself)")
    else:
        print("- MongoDB-wire server CPU during the import: not measured")
    print("- summary printed by the command:")
    print("```")
    print(summary.rstrip())
    print("```")
    if code != 0:
        print(errors[-4000:], file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
