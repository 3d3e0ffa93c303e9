"""``footfall import-log``: an Apache/nginx combined-format access log, through the same case decision.

Issue 2's rules, applied line by line with the log's timestamps as ``now``:

- a line that does not match the combined format is *rejected*: counted, never fatal;
- a *page view* is a ``GET`` with status 2xx or 304 whose path (query removed) does not end in one of
  :data:`ASSET_EXTENSIONS`;
- a *visitor* is the pair (client IP, User-Agent); a crawler (crawlerdetect's list, or no
  User-Agent, as the middleware decides with :func:`~footfall.middleware.core.classify_request`) is
  skipped unless ``include_bots``;
- page views are taken in time order (ties in line order), whatever order the file holds, and each one
  goes through :func:`~footfall.middleware.core.claim_session`,
  :func:`~footfall.middleware.core.session_is_active` and
  :func:`~footfall.middleware.core.resolve_visit` with the cookies that visitor's browser would carry.

Every id is derived, not random (visitor: site, IP and User-Agent; session: visitor and first view time;
page view: site, raw line and how many identical lines came before it), and every document is written
whole with an upserting replace, so importing a file again, or again after lines were appended to it,
stores each page view and session once.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.errors import StoreUnavailable
from footfall.events import PageView
from footfall.middleware.bots import is_crawler
from footfall.middleware.core import (
    Identity,
    claim_session,
    classify_request,
    resolve_visit,
    session_is_active,
)
from footfall.stores.documents import (
    PAGE_VIEWS,
    SESSIONS,
    VISITORS,
    page_view_document,
    visitor_number_update,
    visitor_update,
)
from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.visitor_numbers import reserve_block, visitor_doc_id

__all__ = [
    "ASSET_EXTENSIONS",
    "LOG_FORMATS",
    "LogLine",
    "ImportSummary",
    "parse_combined_line",
    "is_page_view",
    "log_size",
    "import_log",
]

LOG_FORMATS = ("combined",)
ASSET_EXTENSIONS = (".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp",
                    ".avif", ".bmp", ".woff", ".woff2", ".ttf", ".otf", ".eot")  # issue 2, verbatim
WRITE_BATCH = 1000  # operations per bulk_write
PROGRESS_EVERY = 4096  # lines between progress callbacks
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://footfall.invalid/import-log")

_QUOTED = r'"((?:[^"\\]|\\.)*)"'  # Apache escapes " as \", nginx as \x22
_COMBINED_RE = re.compile(
    r"(\S+) \S+ \S+ \[(\d{2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\] "
    + _QUOTED + r" (\d{3}) (?:\d+|-) " + _QUOTED + " " + _QUOTED + r"(?:\s.*)?"
)
_MONTHS = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


@dataclass(frozen=True, slots=True)
class LogLine:
    """One parsed combined-format line.

    :ivar client_ip: ``%h``, the client address (a host name if the server logged names).
    :ivar ts: ``%t`` as a timezone-aware UTC datetime (second precision).
    :ivar method: the request line's method, ``""`` when the request line is not
        ``METHOD TARGET [HTTP/x]`` (scanners log TLS handshakes and empty requests there).
    :ivar target: the request target as logged, query string included (``""`` as for ``method``).
    :ivar status: ``%>s``, the final status.
    :ivar referrer: the ``Referer`` header, ``""`` when logged as ``-``.
    :ivar user_agent: the ``User-Agent`` header, ``""`` when logged as ``-``.
    """

    client_ip: str
    ts: datetime
    method: str
    target: str
    status: int
    referrer: str
    user_agent: str


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


def parse_combined_line(text: str) -> LogLine | None:
    """Parse one line of the combined log format.

    The format is Apache's ``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`` (nginx's
    ``combined`` is the same). Fields after the User-Agent (nginx's ``main`` appends
    ``"$http_x_forwarded_for"``) are ignored. A quoted request field that is not
    ``METHOD TARGET [HTTP/x]`` still parses, with empty ``method`` and ``target``: the log line is
    well formed, the request in it was not. Escapes in quoted fields are kept as logged.

    :param text: the line, with or without its line ending.
    :return: the :class:`LogLine`, or ``None`` when the line is not a combined-format line (including
        an impossible date or a UTC offset of 24 hours or more).
    """
    match = _COMBINED_RE.fullmatch(text.rstrip("\r\n"))
    if match is None:
        return None
    (ip, day, month, year, hour, minute, second, sign, off_h, off_m,
     request, status, referrer, user_agent) = match.groups()
    month_number = _MONTHS.get(month.lower())
    if month_number is None:
        return None
    try:
        offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == "-" else 1)
        local = datetime(int(year), month_number, int(day), int(hour), int(minute), int(second),
                         tzinfo=timezone(offset))
    except ValueError:
        return None
    method, target = _split_request(request)
    return LogLine(ip, local.astimezone(UTC), method, target, int(status),
                   "" if referrer == "-" else referrer, "" if user_agent == "-" else user_agent)


def _split_request(request: str) -> tuple[str, str]:
    """``(method, target)`` of ``METHOD TARGET [HTTP/x]``, else ``("", "")``."""
    parts = request.split(" ")
    well_formed = len(parts) == 2 or (len(parts) == 3 and parts[2].startswith("HTTP/"))
    return (parts[0], parts[1]) if well_formed and parts[0] and parts[1] else ("", "")


def is_page_view(line: LogLine) -> bool:
    """Whether ``line`` is a page view by issue 2's rule, before the crawler rule.

    A ``GET`` answered 2xx or 304 whose path, with the query string removed, does not end in one of
    :data:`ASSET_EXTENSIONS`. The extension check ignores case: ``/IMG_0001.JPG`` is an image on any
    server that serves it (neither shared log has an upper-case asset extension, so this changes none
    of their numbers). ``/a.css?x=1`` is an asset, ``/page?x=.css`` is not.

    :param line: a parsed line.
    :return: ``True`` for a page view (crawler or not: see :func:`import_log`).
    """
    if line.method != "GET" or not (200 <= line.status <= 299 or line.status == 304):
        return False
    path = line.target.split("?", 1)[0]
    return not path.lower().endswith(ASSET_EXTENSIONS)


def _is_crawler_line(line: LogLine) -> bool:
    kind = classify_request(line.method, line.target.split("?", 1)[0], line.user_agent or None,
                            exclude_paths=(), is_crawler=is_crawler)
    return kind == "crawler"


def _visitor_id(site: str, client_ip: str, user_agent: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"visitor\n{site}\n{client_ip}\n{user_agent}"))


def _session_id(visitor_id: str, started_at: datetime) -> str:
    # the middleware's shape: 16 bytes as URL-safe base64 without padding (22 characters)
    digest = uuid.uuid5(_NAMESPACE, f"session\n{visitor_id}\n{started_at.isoformat()}").bytes
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _event_id(site: str, raw_line: str, occurrence: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"page_view\n{site}\n{occurrence}\n{raw_line}"))


@dataclass(frozen=True, slots=True)
class _Hit:
    order: int  # line number, for ties
    line: LogLine
    event_id: str


def _build_documents(
    hits: Iterable[_Hit], *, site: str, session_ttl: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``(sessions, page_views)`` documents for ``hits``, sessionized through the core."""
    browsers: dict[tuple[str, str], tuple[Identity, datetime]] = {}  # what each browser carries
    sessions: dict[str, dict[str, Any]] = {}
    page_views: list[dict[str, Any]] = []
    for hit in sorted(hits, key=lambda h: (h.line.ts, h.order)):
        line, now = hit.line, hit.line.ts
        key = (line.client_ip, line.user_agent)
        identity, last_seen_at = browsers.get(key, (Identity(None, None), now))
        fresh_visitor_id = identity.visitor_id or _visitor_id(site, *key)
        claim = claim_session(identity, fresh_visitor_id=fresh_visitor_id,
                              fresh_session_id=_session_id(fresh_visitor_id, now))
        active = claim.claimed_session_id is not None and session_is_active(last_seen_at, now, session_ttl)
        visit = resolve_visit(claim, session_active=active, now=now)
        browsers[key] = (Identity(visit.visitor_id, visit.session_id), now)
        path, _, query = line.target.partition("?")
        if visit.is_new_session:
            sessions[visit.session_id] = {
                "_id": visit.session_id, "site": site, "visitor_id": visit.visitor_id,
                "started_at": now, "last_seen_at": now, "page_views": 0,
                "entry_path": path, "exit_path": path, "referrer": line.referrer,
                "user_agent": line.user_agent, "first_view_at": now, "last_view_at": now,
            }
        session = sessions[visit.session_id]
        session.update(page_views=session["page_views"] + 1, last_seen_at=now, last_view_at=now,
                       exit_path=path)
        page_views.append(page_view_document(PageView(
            event_id=hit.event_id, site=site, session_id=visit.session_id, visitor_id=visit.visitor_id,
            ts=now, path=path, query=query, referrer=line.referrer, title="", user_agent=line.user_agent,
        )))
    return list(sessions.values()), page_views


def log_size(path: str | Path) -> int:
    """The size of the log in bytes: the total of what :func:`import_log` reports to ``progress``.

    :param path: the log file.
    :return: its size in bytes (the ``length`` of ``click.progressbar``).
    :raises OSError: the file cannot be read.
    """
    return Path(path).stat().st_size


def import_log(
    path: str | Path,
    db: Database,
    *,
    site: str,
    session_ttl: int,
    include_bots: bool = False,
    log_format: str = "combined",
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import an access log into the ``sessions`` and ``page_views`` collections (issue 2's rules).

    The file is read as bytes, split at ``\\n`` only and each line decoded as UTF-8 with invalid bytes
    replaced (real logs hold them; a stray ``\\r`` inside a field does not split a line). Idempotent:
    a second import of the same file, or of the file after lines were appended, leaves each page view
    and each session stored once. Importing with another ``site`` or ``session_ttl`` derives other
    ids, so it adds documents rather than replacing them.

    :param path: the log file.
    :param db: the footfall database; its indexes are created first.
    :param site: the site every page view and session is recorded under.
    :param session_ttl: seconds; a page view less than this after its visitor's previous one continues
        that session (``FOOTFALL_SESSION_TTL``, 1800 by default).
    :param include_bots: count crawlers and requests without a User-Agent as visitors too.
    :param log_format: the line format; only ``"combined"`` exists (``--format``).
    :param progress: called with the number of bytes just read, for a progress bar whose total is
        :func:`log_size`.
    :return: the :class:`ImportSummary`.
    :raises ValueError: ``log_format`` is not ``"combined"`` or ``session_ttl`` is not positive.
    :raises OSError: the file cannot be read.
    :raises StoreUnavailable: MongoDB did not answer or refused a write.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; accepted: {', '.join(LOG_FORMATS)}")
    if session_ttl <= 0:
        raise ValueError(f"session_ttl must be a positive number of seconds, got {session_ttl}")
    ensure_indexes(db)
    counts: Counter[str] = Counter()
    seen_lines: Counter[str] = Counter()
    hits: list[_Hit] = []
    pending_bytes = 0
    with open(path, "rb") as log:
        for number, raw in enumerate(log):
            counts["lines_read"] += 1
            pending_bytes += len(raw)
            if progress is not None and number % PROGRESS_EVERY == PROGRESS_EVERY - 1:
                progress(pending_bytes)
                pending_bytes = 0
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            line = parse_combined_line(text)
            if line is None:
                counts["rejected_lines"] += 1
            elif not is_page_view(line):
                counts["skipped_other_lines"] += 1
            elif not include_bots and _is_crawler_line(line):
                counts["skipped_bot_lines"] += 1
            else:
                occurrence = seen_lines[text]
                seen_lines[text] += 1
                hits.append(_Hit(number, line, _event_id(site, text, occurrence)))
    if progress is not None and pending_bytes:
        progress(pending_bytes)
    sessions, page_views = _build_documents(hits, site=site, session_ttl=session_ttl)
    numbers = _number_visitors(db, site, sessions)
    for doc in (*sessions, *page_views):
        doc["visitor_number"] = numbers.get(doc["visitor_id"])
    _replace_all(db, SESSIONS, sessions)
    _replace_all(db, PAGE_VIEWS, page_views)
    return ImportSummary(
        lines_read=counts["lines_read"], page_views=len(page_views), sessions=len(sessions),
        visitors=len({session["visitor_id"] for session in sessions}),
        rejected_lines=counts["rejected_lines"],
        skipped_bot_lines=counts["skipped_bot_lines"], skipped_other_lines=counts["skipped_other_lines"],
    )


def _number_visitors(db: Database, site: str, sessions: list[dict[str, Any]]) -> dict[str, int]:
    """Give the log's visitors their visitor numbers and write their ``visitors`` documents.

    Visitors already numbered (a file imported again) keep their number; the others get the next
    numbers of the site, reserved as one block above its high-water mark, in first-seen order
    (ties by visitor id), exactly as live traffic would have numbered them.

    :return: visitor id → number.
    :raises StoreUnavailable: MongoDB did not answer.
    """
    spans: dict[str, tuple[datetime, datetime]] = {}
    for session in sessions:
        first, last = spans.get(session["visitor_id"], (session["started_at"], session["last_seen_at"]))
        spans[session["visitor_id"]] = (min(first, session["started_at"]), max(last, session["last_seen_at"]))
    numbers: dict[str, int] = {}
    ids = sorted(spans)
    try:
        for start in range(0, len(ids), WRITE_BATCH):
            chunk = [visitor_doc_id(site, vid) for vid in ids[start:start + WRITE_BATCH]]
            for doc in db[VISITORS].find({"_id": {"$in": chunk}, "visitor_number": {"$type": "number"}}):
                numbers[doc["visitor_id"]] = int(doc["visitor_number"])
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    lacking = sorted((vid for vid in ids if vid not in numbers), key=lambda vid: (spans[vid][0], vid))
    if lacking:
        first_number, _ = reserve_block(db, site, len(lacking))
        numbers.update({vid: first_number + i for i, vid in enumerate(lacking)})
    ops = []
    for vid in ids:
        ops.append(UpdateOne(*visitor_update(site, vid, spans[vid][0], spans[vid][1]), upsert=True))
        ops.append(UpdateOne(*visitor_number_update(site, vid, numbers[vid])))
    for start in range(0, len(ops), WRITE_BATCH):
        try:
            db[VISITORS].bulk_write(ops[start:start + WRITE_BATCH], ordered=False)
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB did not store visitors {start}-: {exc}") from exc
    return numbers


def _replace_all(db: Database, collection: str, documents: list[dict[str, Any]]) -> None:
    for start in range(0, len(documents), WRITE_BATCH):
        batch = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)
                 for doc in documents[start:start + WRITE_BATCH]]
        try:
            db[collection].bulk_write(batch, ordered=False)
        except PyMongoError as exc:
            last = start + len(batch) - 1
            raise StoreUnavailable(
                f"MongoDB did not store {collection} {start}-{last} of {len(documents)}: {exc}"
            ) from exc
