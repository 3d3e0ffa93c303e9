"""The dashboard's login cookie: a signed, timed marker that proves the admin token was typed once.

The cookie never carries the token. Its payload is ``{"v": 1, "fp": <fingerprint>}`` where the
fingerprint is ``HMAC-SHA256(secret key, token)``: keyed, so a cookie read off a screen cannot be
used to guess a weak token offline, and derived from the token, so rotating
``FOOTFALL_ADMIN_TOKEN`` logs every dashboard out. The payload is signed with itsdangerous's
:class:`~itsdangerous.URLSafeTimedSerializer` under a salt of its own (a cookie of the middleware can
never be replayed as a login) and refused after :data:`MAX_AGE` seconds. Signing uses the current
``FOOTFALL_SECRET_KEY``; the fallbacks are accepted when verifying, like the middleware's cookies.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from footfall.settings import Settings

__all__ = ["COOKIE_NAME", "COOKIE_PATH", "MAX_AGE", "SALT", "issue", "is_valid", "cookie_options"]

COOKIE_NAME = "footfall_dashboard"
COOKIE_PATH = "/analytics"  # the page, its static files and the JSON API it calls
MAX_AGE = 7 * 24 * 60 * 60  # seconds
SALT = "footfall.dashboard-login"
_FINGERPRINT_CONTEXT = b"footfall dashboard admin token\x00"


class _ClockSigner(TimestampSigner):
    """A :class:`TimestampSigner` whose clock can be passed in (``now``, Unix seconds)."""

    def __init__(self, *args: Any, now: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._now = now

    def get_timestamp(self) -> int:
        return int(self._now) if self._now is not None else super().get_timestamp()


def _serializer(settings: Settings, now: float | None) -> URLSafeTimedSerializer:
    # itsdangerous wants the keys oldest first and signs with the last one.
    keys = list(reversed(settings.signing_keys))
    return URLSafeTimedSerializer(keys, salt=SALT, signer=_ClockSigner, signer_kwargs={"now": now})


def _fingerprint(key: str, token: str) -> str:
    return hmac.new(key.encode(), _FINGERPRINT_CONTEXT + token.encode(), hashlib.sha256).hexdigest()


def issue(settings: Settings, now: float | None = None) -> str:
    """Sign a login cookie value for the configured admin token.

    :param settings: footfall's settings; ``secret_key`` and ``admin_token`` must be set.
    :param now: the issue time in Unix seconds (tests pass it); the system clock when ``None``.
    :return: the cookie value (URL-safe ASCII; it holds a fingerprint of the token, never the token).
    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY``.
    :raises ValueError: no ``FOOTFALL_ADMIN_TOKEN`` (there is nothing to log in to).
    """
    if not settings.admin_token:
        raise ValueError("FOOTFALL_ADMIN_TOKEN is not configured: the dashboard has no login")
    payload = {"v": 1, "fp": _fingerprint(settings.signing_keys[0], settings.admin_token)}
    return _serializer(settings, now).dumps(payload)


def is_valid(settings: Settings, value: str | None, now: float | None = None) -> bool:
    """Whether ``value`` is a login cookie this deployment issued for its current admin token.

    False (never an exception: a bad cookie only means "not logged in") when the value is missing,
    malformed, signed with an unknown key or salt, older than :data:`MAX_AGE` seconds, or issued for
    another admin token; and always when no admin token or no secret key is configured.

    :param settings: footfall's settings.
    :param value: the cookie's value as the browser sent it, or ``None``.
    :param now: the current time in Unix seconds; the system clock when ``None``.
    :return: ``True`` when the cookie grants admin access.
    """
    if not value or not settings.admin_token or not settings.secret_key:
        return False
    try:
        payload = _serializer(settings, now).loads(value, max_age=MAX_AGE)
    except BadSignature:  # includes SignatureExpired and malformed payloads
        return False
    if not isinstance(payload, dict) or payload.get("v") != 1 or not isinstance(payload.get("fp"), str):
        return False
    token = settings.admin_token
    return any(hmac.compare_digest(payload["fp"], _fingerprint(key, token)) for key in settings.signing_keys)


def cookie_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for :meth:`werkzeug.wrappers.Response.set_cookie` (and ``delete_cookie``).

    ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no cross-site request carries it, the
    first CSRF defence; OWASP CSRF cheat sheet), ``Path=/analytics``, and ``Secure`` unless
    ``FOOTFALL_COOKIE_SECURE=false``.

    .. warning:: with ``cookie_secure=False`` the login cookie travels over plain http, where anyone
       on the path can copy it and read the statistics for up to :data:`MAX_AGE` seconds.
    """
    return {"path": COOKIE_PATH, "secure": settings.cookie_secure, "httponly": True, "samesite": "Strict"}
