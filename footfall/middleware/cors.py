"""CORS for the track endpoint: credentialed, for exact origins only (never ``*``).

The Fetch standard forbids ``Access-Control-Allow-Origin: *`` on credentialed requests, and the
tracker needs credentials (the cookies), so an allowed origin is echoed back exactly, with
``Vary: Origin`` so caches keep answers for different origins apart.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["cors_headers", "preflight_headers", "PREFLIGHT_MAX_AGE"]

PREFLIGHT_MAX_AGE = 86400  # seconds a browser may cache the preflight answer


def cors_headers(origin: str | None, allowed: Iterable[str]) -> list[tuple[str, str]]:
    """Headers for an actual (non-preflight) response.

    :param origin: the request's ``Origin`` header.
    :param allowed: ``FOOTFALL_CORS_ORIGINS`` (exact origins such as ``https://example.com``).
    :return: the CORS headers, or only ``Vary: Origin`` when ``origin`` is not allowed (the browser
        then withholds the answer from the page; same-origin requests need no CORS headers).
    """
    if origin and origin.rstrip("/") in allowed:
        return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin")]
    return [("Vary", "Origin")]


def preflight_headers(
    origin: str | None, allowed: Iterable[str], *, methods: str = "POST, OPTIONS", headers: str = "Content-Type"
) -> list[tuple[str, str]] | None:
    """Headers for a preflight (``OPTIONS``) answer, or ``None`` when ``origin`` is not allowed.

    :param methods: ``Access-Control-Allow-Methods`` (the track endpoint's by default).
    :param headers: ``Access-Control-Allow-Headers`` (``GET /api/stats`` also allows ``Authorization``).
    """
    if not origin or origin.rstrip("/") not in allowed:
        return None
    return cors_headers(origin, allowed) + [
        ("Access-Control-Allow-Methods", methods),
        ("Access-Control-Allow-Headers", headers),
        ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE)),
    ]
