"""``footfall import-log``: an Apache/nginx combined-format access log, through the same case decision.

Issue 2's rules, applied line by line with the log's timestamps as ``now``:

- a line that does not match the combined format is *rejected*: counted, never fatal;
- a *page view* is a ``GET`` with status 2xx or 304 whose path (query removed) does not end in one of
  :data:`ASSET_EXTENSIONS`;
- a *visitor* is the pair (client IP, User-Agent); a crawler (crawlerdetect's list, or no
  User-Agent, as the middleware decides with :func:`~footfall.middleware.core.classify_request`) is
  skipped unless ``include_bots``;
- page views are taken in time order (ties in line order), whatever order the file holds, and each one
  goes through the middleware's case decision (:class:`footfall.import_sessions.Sessionizer`).

At a real site's size (issue 11) the import streams, in memory that does not grow with the log:

1. **read**: the log (a file, gzip or not, or standard input: :mod:`footfall.log_input`) is parsed
   line by line; each page view becomes a small record ``(time, line number, line, fields)`` added to
   an external merge sort (:class:`footfall.log_sort.ExternalSort`: sorted runs of ``run_size``
   records on disk), and its visitor key to a second one that counts distinct visitors;
2. **sessionize and write**: the runs are merged in ``(time, line number)`` order, exactly the order
   the importer always used, so the sessions are the same on any input; sessions are finished as
   soon as the log's clock is ``session_ttl`` past their last page view, and documents are written
   in batches (:class:`footfall.import_writer.ImportWriter`: unordered inserts, replaces for those
   stored before, visitor numbers one block per batch) while the next batch is built.

Every id is derived, not random (visitor: site, IP and User-Agent; session: visitor and first view time;
page view: site, raw line and how many identical lines came before it), and every document is written
whole, so importing a file again, or again after lines were appended to it, stores each page view and
session once.

Documents carry the same enriched fields as the drain's (``docs/data-model.md``,
:func:`footfall.stores.documents.visit_facts`): device, browser and OS from the logged User-Agent,
``referrer_host`` from the logged referrer (same-site against any of ``host``), UTM fields from the
first page view's query, and ``country`` / ``city`` from the client IP through the lookup live
traffic uses (:func:`footfall.geo.build_geo_lookup`: geoip2fast, or ``FOOTFALL_GEOIP_DB``); the IP
itself is never stored. Session documents carry the rollup marks (:mod:`footfall.stores.rollup_marks`);
the hourly rollups gain only the sessions and page views whose write *inserted* them, so an import
repeated counts nothing twice.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Literal

from pymongo.database import Database

from footfall.access_log import ASSET_EXTENSIONS, LogLine, is_page_view, parse_combined_line
from footfall.enrich import USER_AGENT_CACHE
from footfall.geo import build_geo_lookup
from footfall.import_sessions import Place, Sessionizer, event_id
from footfall.import_writer import WRITE_BATCH, ImportWriter
from footfall.log_input import STDIN, LogSource, open_log
from footfall.log_sort import ExternalSort, count_distinct
from footfall.middleware.bots import is_crawler
from footfall.middleware.core import classify_request
from footfall.stores.mongo_writer import ensure_indexes

__all__ = [
    "ASSET_EXTENSIONS",
    "LOG_FORMATS",
    "LogLine",
    "ImportProgress",
    "ImportSummary",
    "Place",
    "parse_combined_line",
    "is_page_view",
    "log_size",
    "import_log",
]

LOG_FORMATS = ("combined",)
RUN_SIZE = 100_000  # page views per sorted run held in memory (about 40 MB of records)
PLACE_CACHE = 65_536  # distinct client IPs whose place is remembered (as footfall.geo's lookups)
PROGRESS_EVERY = 4096  # lines between progress callbacks while reading

Record = tuple[int, int, str, str, str, str, str]  # (UTC epoch seconds, line number, line, IP, target, referrer, UA)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import read and what the file contributes.

    ``lines_read == page_views_lines + rejected_lines + skipped_bot_lines + skipped_other_lines``,
    where the page-view lines are the ``page_views`` counted.

    :ivar lines_read: lines in the file.
    :ivar page_views: page views stored (or found already stored) for this file.
    :ivar sessions: sessions (visits) those page views form.
    :ivar visitors: distinct (client IP, User-Agent) pairs among them.
    :ivar rejected_lines: lines that are not combined-format lines.
    :ivar skipped_bot_lines: page-view lines skipped because the User-Agent is a crawler or missing
        (0 with ``include_bots``).
    :ivar skipped_other_lines: parsed lines that are not page views (other method, status or an asset).
    """

    lines_read: int
    page_views: int
    sessions: int
    visitors: int
    rejected_lines: int
    skipped_bot_lines: int
    skipped_other_lines: int

    def as_dict(self) -> dict[str, int]:
        """The fields as a plain ``dict`` in declaration order (for JSON output)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ImportProgress:
    """Where an import is, for a progress bar.

    :ivar phase: ``"read"`` while the log is read and sorted, then ``"write"`` while page views are
        sessionized and written.
    :ivar lines: lines read so far (all of them once ``phase`` is ``"write"``).
    :ivar done: ``"read"``: bytes of the file consumed so far (compressed bytes for gzip);
        ``"write"``: page views handed to the database so far.
    :ivar total: ``"read"``: the file's size in bytes, ``None`` for standard input or a pipe;
        ``"write"``: the page views to write.
    """

    phase: Literal["read", "write"]
    lines: int
    done: int
    total: int | None


_is_crawler_cached = lru_cache(maxsize=USER_AGENT_CACHE)(is_crawler)


def _is_crawler_line(line: LogLine) -> bool:
    kind = classify_request(line.method, line.target.split("?", 1)[0], line.user_agent or None,
                            exclude_paths=(), is_crawler=_is_crawler_cached)
    return kind == "crawler"


def log_size(path: str | Path) -> int | None:
    """The size of the log in bytes: the ``total`` :func:`import_log` reports while reading.

    :param path: the log file, or ``"-"`` (standard input).
    :return: its size on disk in bytes (compressed, for gzip), ``None`` for ``"-"``.
    :raises OSError: the file cannot be read.
    """
    return None if str(path) == STDIN else Path(path).stat().st_size


def _places(
    country_of: Callable[[str], Place] | None, geoip_db: str | None
) -> tuple[Callable[[str], Place], Callable[[], None]]:
    """``(client IP -> place, close)``: the given lookup (remembered per IP), or live traffic's."""
    if country_of is not None:
        return lru_cache(maxsize=PLACE_CACHE)(country_of), lambda: None
    geo = build_geo_lookup(geoip_db)

    def place_of(ip: str) -> Place:
        location = geo.locate(ip)  # cached per IP by the lookup itself
        return location.country_code, location.city

    return place_of, getattr(geo, "close", lambda: None)


def _hosts(host: str | Iterable[str]) -> tuple[str, ...]:
    names = (host,) if isinstance(host, str) else tuple(host)
    return tuple(dict.fromkeys(name.strip().lower() for name in names if name.strip()))


def import_log(
    path: str | Path,
    db: Database,
    *,
    site: str,
    session_ttl: int,
    include_bots: bool = False,
    log_format: str = "combined",
    progress: Callable[[ImportProgress], None] | None = None,
    host: str | Iterable[str] = "",
    country_of: Callable[[str], Place] | None = None,
    geoip_db: str | None = None,
    run_size: int = RUN_SIZE,
    batch_size: int = WRITE_BATCH,
    stdin: IO[bytes] | None = None,
    temp_dir: str | Path | None = None,
) -> ImportSummary:
    """Import an access log into the ``sessions``, ``page_views`` and ``visitors`` collections
    (issue 2's rules), with the rollup marks the builder reads (:mod:`footfall.stores.rollup_marks`).

    The log is read as bytes (gunzipped when it starts with the gzip magic bytes or is named
    ``*.gz``), split at ``\\n`` only and each line decoded as UTF-8 with invalid bytes replaced (real
    logs hold them; a stray ``\\r`` inside a field does not split a line). Idempotent: a second import
    of the same file, or of the file after lines were appended, leaves each page view and each
    session stored once. Importing with another ``site`` or ``session_ttl`` derives other ids, so it
    adds documents rather than replacing them. Memory is bounded by ``run_size``, ``batch_size`` and
    the visitors active within one ``session_ttl`` of the log's time, not by the log's length;
    temporary run files take about the size of the log's page-view lines.

    :param path: the log file, or ``"-"`` for standard input.
    :param db: the footfall database; its indexes are created first.
    :param site: the site every page view and session is recorded under.
    :param session_ttl: seconds; a page view less than this after its visitor's previous one continues
        that session (``FOOTFALL_SESSION_TTL``, 1800 by default).
    :param include_bots: count crawlers and requests without a User-Agent as visitors too.
    :param log_format: the line format; only ``"combined"`` exists (``--format``).
    :param progress: called with an :class:`ImportProgress` every few thousand lines while reading
        and after each batch while writing.
    :param host: the site's own host name, or several (``www.`` ignored): a referrer on any of them
        is same-site, so it gives no ``referrer_host``; ``""`` (the default) counts every referrer as
        external.
    :param country_of: ``client IP -> (country code, city)`` (each ``None`` when unknown), called at
        most once per IP among the last :data:`PLACE_CACHE` distinct ones; ``None`` (the default)
        uses the lookup live traffic uses, :func:`footfall.geo.build_geo_lookup` of ``geoip_db``.
    :param geoip_db: a MaxMind ``.mmdb`` (``FOOTFALL_GEOIP_DB``; then cities too), ``None`` for
        geoip2fast's bundled countries; ignored when ``country_of`` is given.
    :param run_size: page views held in memory per sorted run (≥ 1).
    :param batch_size: page views per write batch (≥ 1).
    :param stdin: the binary stream read for ``"-"`` (default ``sys.stdin.buffer``).
    :param temp_dir: where the sorted runs are written (default ``TMPDIR``).
    :return: the :class:`ImportSummary`.
    :raises ValueError: ``log_format`` is not ``"combined"``, or ``session_ttl``, ``run_size`` or
        ``batch_size`` is not positive.
    :raises OSError: the log or a temporary run cannot be read or written (a corrupt gzip stream
        included: :class:`gzip.BadGzipFile`).
    :raises EOFError: a gzip stream ends early (a truncated ``.gz``).
    :raises StoreUnavailable: MongoDB did not answer or refused a write.
    :raises ConfigurationError: ``geoip_db`` cannot be read (:class:`footfall.geo.MaxMindLookup`).
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; accepted: {', '.join(LOG_FORMATS)}")
    for name, value in (("session_ttl", session_ttl), ("run_size", run_size), ("batch_size", batch_size)):
        if value <= 0:
            raise ValueError(f"{name} must be a positive number, got {value}")
    ensure_indexes(db)
    counts: Counter[str] = Counter()
    with ExternalSort[Record](run_size, directory=temp_dir) as hits, \
            ExternalSort[tuple[str, str]](run_size, directory=temp_dir, unique=True) as visitors:
        with open_log(path, stdin=stdin) as source:
            _read(source, hits, visitors, counts, include_bots=include_bots, progress=progress)
        visitor_count = count_distinct(visitors)  # type: ignore[arg-type]
        visitors.close()
        place_of, close_places = _places(country_of, geoip_db)
        writer = ImportWriter(db, site, batch_size=batch_size)
        sessionizer = Sessionizer(site=site, session_ttl=session_ttl, hosts=_hosts(host), place_of=place_of,
                                  on_page_view=writer.page_view, on_session=writer.session)
        try:
            _sessionize(hits.sorted(), sessionizer, writer, site=site, lines=counts["lines_read"],
                        page_views=hits.added, progress=progress)
        finally:
            close_places()
    return ImportSummary(
        lines_read=counts["lines_read"], page_views=hits.added, sessions=sessionizer.sessions,
        visitors=visitor_count, rejected_lines=counts["rejected_lines"],
        skipped_bot_lines=counts["skipped_bot_lines"], skipped_other_lines=counts["skipped_other_lines"],
    )


def _read(source: LogSource, hits: ExternalSort[Record], visitors: ExternalSort[tuple[str, str]],
          counts: Counter[str], *, include_bots: bool,
          progress: Callable[[ImportProgress], None] | None) -> None:
    """Phase 1: parse every line, count it, and add each page view to the sort."""
    read_bytes = 0  # decompressed, when the source cannot tell its position
    number = -1
    if progress is not None:
        progress(ImportProgress("read", 0, 0, source.size))
    for number, raw in enumerate(source.lines):
        read_bytes += len(raw)
        if progress is not None and number % PROGRESS_EVERY == PROGRESS_EVERY - 1:
            position = source.position()
            progress(ImportProgress("read", number + 1, read_bytes if position is None else position, source.size))
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        line = parse_combined_line(text)
        if line is None:
            counts["rejected_lines"] += 1
        elif not is_page_view(line):
            counts["skipped_other_lines"] += 1
        elif not include_bots and _is_crawler_line(line):
            counts["skipped_bot_lines"] += 1
        else:
            hits.add((int(line.ts.timestamp()), number, text, line.client_ip, line.target, line.referrer,
                      line.user_agent))
            visitors.add((line.client_ip, line.user_agent))
    counts["lines_read"] = number + 1
    if progress is not None:
        position = source.position()
        done = source.size if source.size is not None else (read_bytes if position is None else position)
        progress(ImportProgress("read", number + 1, done, source.size))


def _sessionize(records: Iterable[Record], sessionizer: Sessionizer, writer: ImportWriter, *, site: str,
                lines: int, page_views: int, progress: Callable[[ImportProgress], None] | None) -> None:
    """Phase 2: page views in (time, line) order through the sessionizer; batches flushed only
    between two timestamps (identical lines, and visitors first seen in the same second, stay in
    one batch)."""
    occurrences: Counter[str] = Counter()  # identical lines have identical times: counted per second
    current: int | None = None
    now = datetime.min
    if progress is not None:
        progress(ImportProgress("write", lines, 0, page_views))
    try:
        for ts, _number, text, client_ip, target, referrer, user_agent in records:
            if ts != current:
                if writer.full:
                    writer.flush()
                    if progress is not None:
                        progress(ImportProgress("write", lines, writer.written_views, page_views))
                current, now = ts, datetime.fromtimestamp(ts, UTC)
                occurrences.clear()
                sessionizer.expire(now)
            occurrence = occurrences[text]
            occurrences[text] = occurrence + 1
            sessionizer.page_view(now, client_ip=client_ip, user_agent=user_agent, target=target,
                                  referrer=referrer, view_id=event_id(site, text, occurrence))
        sessionizer.finish_all()
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if progress is not None:
        progress(ImportProgress("write", lines, writer.written_views, page_views))
