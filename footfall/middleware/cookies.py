"""Signing, verifying and emitting footfall's two cookies with itsdangerous and Werkzeug.

- ``session`` (name from ``FOOTFALL_SESSION_COOKIE_NAME``): the visit id, ``Max-Age`` =
  ``FOOTFALL_SESSION_TTL``, re-issued on every tracked request so it slides with Redis.
- ``visitor_id`` (``FOOTFALL_VISITOR_COOKIE_NAME``): the visitor's UUID4, ``Max-Age`` =
  ``FOOTFALL_VISITOR_TTL``; once the visitor has a number it also carries it and its site
  (``<uuid>|<site>|<number>``, signed), so a returning visitor keeps its number even if Redis
  forgot it.

Both are HMAC-SHA256 signed (itsdangerous :class:`~itsdangerous.Signer`) with a different salt each,
so one cannot stand in for the other. Verification accepts the current key and every fallback key
(rotation); signing uses the current key only. Attributes are ``HttpOnly; SameSite=Lax; Path=/`` and
``Secure`` unless ``FOOTFALL_COOKIE_SECURE=false`` (OWASP Session Management Cheat Sheet, "Cookies").
A cookie that fails verification is treated as absent: never trusted, never an error.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from functools import lru_cache, partial

from itsdangerous import BadSignature, Signer
from werkzeug.http import dump_cookie, parse_cookie

from footfall.middleware.core import Identity, Visit
from footfall.settings import Settings

__all__ = ["CookieCodec", "new_visitor_id", "new_session_id"]

MAX_ID_CHARS = 64
CACHE_SIZE = 4096  # verified and signed cookie values remembered per codec


def new_visitor_id() -> str:
    """A fresh visitor id: a random UUID4 (122 random bits), as the design seed's ``randomUUID()``."""
    return str(uuid.uuid4())


def new_session_id() -> str:
    """A fresh session id: 128 bits from :mod:`secrets`, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)


class CookieCodec:
    """Reads :class:`~footfall.middleware.core.Identity` from a ``Cookie`` header and writes
    ``Set-Cookie`` values for a :class:`~footfall.middleware.core.Visit`.

    :param settings: supplies the keys, cookie names, TTLs and the ``Secure`` flag.
    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY``.
    """

    def __init__(self, settings: Settings) -> None:
        keys = list(reversed(settings.signing_keys))  # itsdangerous signs with the last key
        self._session_signer = Signer(keys, salt="footfall.session", digest_method=hashlib.sha256)
        self._visitor_signer = Signer(keys, salt="footfall.visitor_id", digest_method=hashlib.sha256)
        self._session_name = settings.session_cookie_name
        self._visitor_name = settings.visitor_cookie_name
        self._session_ttl = settings.session_ttl
        self._visitor_ttl = settings.visitor_ttl
        self._secure = settings.cookie_secure
        # Verifying and signing are HMACs over the same few values again and again (a visitor's
        # cookies on every request of its visit): remember the answers, per codec, bounded.
        self._verify_session = lru_cache(maxsize=CACHE_SIZE)(partial(self._verify, self._session_signer))
        self._verify_visitor = lru_cache(maxsize=CACHE_SIZE)(
            partial(self._verify, self._visitor_signer, limit=MAX_ID_CHARS + 130))
        self._sign = lru_cache(maxsize=CACHE_SIZE)(self._sign_value)

    @staticmethod
    def _verify(signer: Signer, value: str | None, limit: int = MAX_ID_CHARS) -> str | None:
        if not value or len(value) > 400:
            return None
        try:
            unsigned = signer.unsign(value).decode("ascii")
        except (BadSignature, UnicodeDecodeError):
            return None
        return unsigned if 0 < len(unsigned) <= limit else None

    def _read_visitor(self, value: str | None) -> tuple[str | None, int | None, str | None]:
        """``(visitor id, number, number's site)`` from the visitor cookie, whose signed value is
        ``<visitor id>`` or ``<visitor id>|<site>|<number>`` (site names never contain ``|``)."""
        unsigned = self._verify_visitor(value)
        if unsigned is None:
            return None, None, None
        visitor_id, _, rest = unsigned.partition("|")
        site, _, number = rest.partition("|")
        if not visitor_id or len(visitor_id) > MAX_ID_CHARS:
            return None, None, None
        if not (site and number.isdigit() and len(number) <= 18):
            return visitor_id, None, None
        return visitor_id, int(number), site

    def read(self, cookie_header: str | None) -> Identity:
        """Verify the request's cookies.

        :param cookie_header: the raw ``Cookie`` header, or ``None``.
        :return: the :class:`Identity`; a missing, forged or old-key-less cookie gives ``None`` there.
        """
        if not cookie_header:
            return Identity(None, None)
        try:
            cookies = parse_cookie(cookie_header)
        except UnicodeError:
            # Werkzeug decodes the header as UTF-8 and raises on other bytes (a forged cookie, or
            # another application's). footfall's own values are ASCII: drop the rest, never fail.
            cookies = parse_cookie(cookie_header.encode("ascii", "ignore").decode("ascii"))
        visitor_id, number, number_site = self._read_visitor(cookies.get(self._visitor_name))
        return Identity(
            visitor_id=visitor_id,
            session_id=self._verify_session(cookies.get(self._session_name)),
            visitor_number=number,
            number_site=number_site,
        )

    def set_cookie_headers(self, visit: Visit) -> list[str]:
        """The ``Set-Cookie`` header values for ``visit``: always the session cookie, and the visitor
        cookie when :attr:`Visit.sets_visitor_cookie`."""
        headers = [self._dump(self._session_name, self._session_signer, visit.session_id, self._session_ttl)]
        if visit.sets_visitor_cookie:
            value = visit.visitor_id
            if visit.visitor_number is not None and visit.site:
                value = f"{visit.visitor_id}|{visit.site}|{visit.visitor_number}"
            headers.append(self._dump(self._visitor_name, self._visitor_signer, value, self._visitor_ttl))
        return headers

    def _sign_value(self, signer: Signer, value: str) -> str:
        return signer.sign(value).decode("ascii")

    def _dump(self, name: str, signer: Signer, value: str, max_age: int) -> str:
        return dump_cookie(
            name, self._sign(signer, value), max_age=max_age, path="/",
            secure=self._secure, httponly=True, samesite="Lax",
        )
