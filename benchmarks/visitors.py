"""Pre-created visitors: the signed cookie jars that same-session traffic replays."""

from __future__ import annotations

import http.client
from pathlib import Path
from urllib.parse import urlsplit

from werkzeug.test import Client

from benchmarks.apps import create_wrapped

__all__ = ["BROWSER_UA", "CRAWLER_UA", "create_visitors", "create_visitors_over_http", "write_jars"]

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
CRAWLER_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def create_visitors(count: int) -> list[str]:
    """Call the wrapped app once per visitor, in this process, and keep the cookies it set.

    The app reads the same ``FOOTFALL_*`` variables as the gunicorn workers (set by the runner), so
    the cookies are signed with the same key and their sessions live in the same Redis; each call
    starts a session there and queues its visit on the stream.

    :param count: visitors to create.
    :return: one ``Cookie`` header value per visitor (``session=...; visitor_id=...``).
    :raises RuntimeError: the app set no cookies (Redis unreachable: footfall failed open).
    """
    app = create_wrapped()
    client = Client(app.wsgi_app, use_cookies=False)
    jars = []
    try:
        for _ in range(count):
            response = client.get("/", headers={"User-Agent": BROWSER_UA})
            jars.append(_jar(response.headers.getlist("Set-Cookie")))
    finally:
        app.wsgi_app.close()  # type: ignore[attr-defined]
    return jars


def _jar(set_cookies: list[str]) -> str:
    """``session=...; visitor_id=...`` from the two ``Set-Cookie`` values of a first visit.

    :raises RuntimeError: not exactly two cookies (Redis unreachable: footfall failed open).
    """
    pairs = [value.split(";", 1)[0] for value in set_cookies]
    if len(pairs) != 2:
        raise RuntimeError(f"expected two cookies from the wrapped app, got {pairs!r}")
    return "; ".join(pairs)


def create_visitors_over_http(base_url: str, count: int) -> list[str]:
    """Send one cookie-less ``GET /`` per visitor to a running wrapped app and keep the cookies it set.

    Used for the ASGI pair: its visitors are created by the wrapped ASGI app itself, under uvicorn,
    over one keep-alive connection.

    :param base_url: the wrapped app, ``http://127.0.0.1:PORT``.
    :param count: visitors to create.
    :return: one ``Cookie`` header value per visitor (``session=...; visitor_id=...``).
    :raises RuntimeError: a response set other than two cookies.
    :raises OSError: the app is unreachable.
    """
    address = urlsplit(base_url)
    conn = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    jars = []
    try:
        for _ in range(count):
            conn.request("GET", "/", headers={"User-Agent": BROWSER_UA})
            response = conn.getresponse()
            response.read()
            jars.append(_jar(response.msg.get_all("Set-Cookie") or []))
    finally:
        conn.close()
    return jars


def write_jars(jars: list[str], path: Path) -> Path:
    """Write one jar per line, as ``replay.lua`` reads them."""
    path.write_text("".join(jar + "\n" for jar in jars))
    return path
