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

Documents carry the same enriched fields as the drain's (``docs/data-model.md``,
:func:`footfall.stores.documents.visit_facts`): device, browser and OS from the logged User-Agent,
``referrer_host`` from the logged referrer (same-site against ``host``, when given), UTM fields from
the first page view's query; ``country`` / ``city`` only when a lookup ``country_of`` is passed in
(the log has the client IP, which is never stored). The hourly rollups are kept through the same
rule as the drain's (:mod:`footfall.stores.rollups`): increments only for the sessions and page views
whose upsert *inserted* them, so an import repeated counts nothing twice.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database
from pymongo.errors import PyMongoError

from footfall.access_log import ASSET_EXTENSIONS, LogLine, is_page_view, parse_combined_line
from footfall.enrich import utm_fields
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
    visit_facts,
    visitor_number_update,
    visitor_update,
)
from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.rollup_marks import DIRTY, HOURS, dirty_token, hour_of
from footfall.stores.rollups import apply_increments, rollup_increments
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
WRITE_BATCH = 1000  # operations per bulk_write
Place = tuple[str | None, str | None]  # (ISO 3166-1 alpha-2 country code, city), each or None

PROGRESS_EVERY = 4096  # lines between progress callbacks
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://footfall.invalid/import-log")


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
    hits: Iterable[_Hit], *, site: str, session_ttl: int, host: str = "",
    country_of: Callable[[str], Place] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``(sessions, page_views)`` documents for ``hits``, sessionized through the core."""
    browsers: dict[tuple[str, str], tuple[Identity, datetime]] = {}  # what each browser carries
    places: dict[str, Place] = {}  # client IP -> its place, looked up once
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
        if country_of is not None and line.client_ip not in places:
            places[line.client_ip] = country_of(line.client_ip)
        country, city = places.get(line.client_ip, (None, None))
        if visit.is_new_session:
            sessions[visit.session_id] = {
                "_id": visit.session_id, "site": site, "visitor_id": visit.visitor_id,
                "started_at": now, "last_seen_at": now, "page_views": 0,
                "entry_path": path, "exit_path": path, "referrer": line.referrer,
                "user_agent": line.user_agent, "first_view_at": now, "last_view_at": now,
                **visit_facts(referrer=line.referrer, host=host, user_agent=line.user_agent, country=country,
                              city=city),
                **utm_fields(query), "paths": [], "routes": [], "events": 0, "event_names": [],
                "start_recorded": True,
            }
        session = sessions[visit.session_id]
        session.update(page_views=session["page_views"] + 1, last_seen_at=now, last_view_at=now,
                       exit_path=path)
        if path not in session["paths"]:
            session["paths"].append(path)
        page_views.append(page_view_document(PageView(
            event_id=hit.event_id, site=site, session_id=visit.session_id, visitor_id=visit.visitor_id,
            ts=now, path=path, query=query, referrer=line.referrer, title="", user_agent=line.user_agent,
            host=host, country=country, city=city,
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
    host: str = "",
    country_of: Callable[[str], Place] | None = None,
) -> ImportSummary:
    """Import an access log into the ``sessions`` and ``page_views`` collections (issue 2's rules),
    and add what it inserted to ``rollups_hourly``.

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
    :param host: the site's own host name (``www.`` ignored): a referrer on it is same-site, so it
        gives no ``referrer_host``; ``""`` (the default) counts every referrer as external.
    :param country_of: ``client IP -> (country code, city)`` (each ``None`` when unknown), called
        once per distinct IP; ``None`` (the default) leaves ``country`` and ``city`` null.
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
    sessions, page_views = _build_documents(hits, site=site, session_ttl=session_ttl, host=host,
                                            country_of=country_of)
    numbers = _number_visitors(db, site, sessions)
    for doc in (*sessions, *page_views):
        doc["visitor_number"] = numbers.get(doc["visitor_id"])
    _mark_for_rollups(sessions, page_views)
    new_sessions = _replace_all(db, SESSIONS, sessions)
    new_views = _replace_all(db, PAGE_VIEWS, page_views)
    apply_increments(db, rollup_increments(visits=[(site, doc["started_at"]) for doc in new_sessions],
                                           page_views=[(site, doc["ts"]) for doc in new_views]))
    return ImportSummary(
        lines_read=counts["lines_read"], page_views=len(page_views), sessions=len(sessions),
        visitors=len({session["visitor_id"] for session in sessions}),
        rejected_lines=counts["rejected_lines"],
        skipped_bot_lines=counts["skipped_bot_lines"], skipped_other_lines=counts["skipped_other_lines"],
    )


def _mark_for_rollups(sessions: list[dict[str, Any]], page_views: list[dict[str, Any]]) -> None:
    """Give each session document the rollup marks a drain write gives it
    (:mod:`footfall.stores.rollup_marks`): the hours of its start and page views, and a dirty token."""
    hours: dict[str, set[datetime]] = {doc["_id"]: {hour_of(doc["started_at"])} for doc in sessions}
    for view in page_views:
        hours[view["session_id"]].add(hour_of(view["ts"]))
    for doc in sessions:
        doc[HOURS] = sorted(hours[doc["_id"]])
        doc[DIRTY] = dirty_token()


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


def _replace_all(db: Database, collection: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write ``documents`` whole (upserting replaces).

    :return: the documents the write inserted (new), as opposed to replaced (imported before).
    :raises StoreUnavailable: MongoDB did not answer or refused a document.
    """
    inserted: list[dict[str, Any]] = []
    for start in range(0, len(documents), WRITE_BATCH):
        batch = [ReplaceOne({"_id": doc["_id"]}, doc, upsert=True)
                 for doc in documents[start:start + WRITE_BATCH]]
        try:
            result = db[collection].bulk_write(batch, ordered=False)
        except PyMongoError as exc:
            last = start + len(batch) - 1
            raise StoreUnavailable(
                f"MongoDB did not store {collection} {start}-{last} of {len(documents)}: {exc}"
            ) from exc
        inserted.extend(documents[start + index] for index in (result.upserted_ids or {}))
    return inserted
