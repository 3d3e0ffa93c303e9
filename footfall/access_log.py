"""Apache/nginx combined-format access log lines: parsing, and issue 2's page-view rule. Pure code,
used by :mod:`footfall.importer` (which re-exports these names)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

__all__ = ["ASSET_EXTENSIONS", "LogLine", "parse_combined_line", "is_page_view"]

ASSET_EXTENSIONS = (".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp",
                    ".avif", ".bmp", ".woff", ".woff2", ".ttf", ".otf", ".eot")  # issue 2, verbatim
# Apache escapes " as \", nginx as \x22. The loop is unrolled (Friedl, *Mastering Regular Expressions*,
# "unrolling the loop"): the same language as "((?:[^"\\]|\\.)*)", matched about 4 times faster.
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
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
