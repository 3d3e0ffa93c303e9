"""One :class:`Settings` object, built from ``FOOTFALL_*`` environment variables.

Every setting is documented in the README's "Settings" table; the names here are the contract other
tools are written against, so they never change silently.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from footfall.errors import ConfigurationError

__all__ = ["Settings", "DEFAULT_EXCLUDE_PATHS"]

DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = ("/static/", "/favicon.ico", "/robots.txt")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean (use true or false)")


def _parse_seconds(name: str, raw: str) -> int:
    """A positive whole number (seconds, or a count for ``*_SIZE`` settings)."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a positive whole number") from None
    if value <= 0:
        raise ConfigurationError(f"{name}={value} must be a positive whole number")
    return value


def _parse_zone(name: str, raw: str) -> str:
    """An IANA time zone name that zoneinfo knows (``Europe/Paris``, ``UTC``)."""
    value = raw.strip()
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"{name}={raw!r} is not an IANA time zone such as UTC or Asia/Dhaka") from None
    return value


def _parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    """footfall's configuration. Build it with :meth:`from_env` or pass fields directly in tests.

    Durations are integer seconds. ``secret_key`` signs both cookies with itsdangerous;
    ``secret_key_fallbacks`` are older keys still accepted when verifying (key rotation, as Django's
    and Flask's ``SECRET_KEY_FALLBACKS``), never used to sign.

    ``respect_gpc``: honour Global Privacy Control (https://privacycg.github.io/gpc-spec/): the
    tracker script sends nothing when ``navigator.globalPrivacyControl`` is true, and the track
    endpoint records nothing from a request with ``Sec-GPC: 1``.

    ``public_stats``, ``active_window`` and ``timezone`` shape the live numbers
    (:mod:`footfall.live`): who may read ``GET /api/stats`` and the live streams, how long after its
    last request a session still counts as an active visitor (seconds), and the IANA time zone whose
    calendar day is "today".

    .. warning:: ``public_stats=True`` lets anyone read a site's live counters (visits, visitors,
       active visitors, countries) without the admin token. Only for sites that show them publicly.

    .. warning:: ``cookie_secure=False`` sends the cookies over plain http, where anyone on the path
       can read and replay them. Only for local development.

    .. warning:: ``trusted_proxies`` (``FOOTFALL_TRUSTED_PROXIES``) makes footfall believe the
       ``X-Forwarded-For`` entries those proxies add. List only proxies you run: anyone can send the
       header, and a trusted range that includes clients lets them choose their country.
    """

    secret_key: str | None = None
    secret_key_fallbacks: tuple[str, ...] = ()
    cookie_secure: bool = True
    session_cookie_name: str = "session"
    visitor_cookie_name: str = "visitor_id"
    session_ttl: int = 30 * 60  # seconds
    visitor_ttl: int = 365 * 24 * 60 * 60  # seconds
    exclude_paths: tuple[str, ...] = DEFAULT_EXCLUDE_PATHS
    server_pageviews: bool = False
    default_site: str = "default"
    cors_origins: tuple[str, ...] = ()
    admin_token: str | None = None
    redis_url: str | None = None
    mongodb_uri: str | None = None
    redis_socket_timeout: float = 0.1  # seconds
    data_dir: str = ".footfall"
    inprocess_drain: bool = True
    visitor_number_digits: int = 4
    visitor_number_block: int = 100
    drain_batch_size: int = 500
    drain_claim_idle: float = 30.0  # seconds
    track_path: str = "/analytics/track"
    trusted_proxies: tuple[str, ...] = ()
    geoip_db: str | None = None
    script_path: str = "/analytics/footfall.js"
    respect_gpc: bool = False
    public_stats: bool = False
    active_window: int = 300  # seconds
    timezone: str = "UTC"  # IANA name: "today" of the live numbers, and the dashboard's days when a query names no tz

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``FOOTFALL_*`` variable; unset ones keep their defaults.

        :param environ: the mapping to read, ``os.environ`` when ``None``.
        :return: a frozen :class:`Settings`.
        :raises ConfigurationError: a variable is present but malformed (the message names it).
        """
        env = os.environ if environ is None else environ
        kwargs: dict[str, Any] = {}

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        if (raw := get("FOOTFALL_SECRET_KEY")) is not None:
            kwargs["secret_key"] = raw
        if (raw := get("FOOTFALL_SECRET_KEY_FALLBACKS")) is not None:
            kwargs["secret_key_fallbacks"] = _parse_list(raw)
        if (raw := get("FOOTFALL_COOKIE_SECURE")) is not None:
            kwargs["cookie_secure"] = _parse_bool("FOOTFALL_COOKIE_SECURE", raw)
        if (raw := get("FOOTFALL_SESSION_COOKIE_NAME")) is not None:
            kwargs["session_cookie_name"] = raw
        if (raw := get("FOOTFALL_VISITOR_COOKIE_NAME")) is not None:
            kwargs["visitor_cookie_name"] = raw
        if (raw := get("FOOTFALL_SESSION_TTL")) is not None:
            kwargs["session_ttl"] = _parse_seconds("FOOTFALL_SESSION_TTL", raw)
        if (raw := get("FOOTFALL_VISITOR_TTL")) is not None:
            kwargs["visitor_ttl"] = _parse_seconds("FOOTFALL_VISITOR_TTL", raw)
        if (raw := env.get("FOOTFALL_EXCLUDE_PATHS")) is not None:
            kwargs["exclude_paths"] = _parse_list(raw)
        if (raw := get("FOOTFALL_SERVER_PAGEVIEWS")) is not None:
            kwargs["server_pageviews"] = _parse_bool("FOOTFALL_SERVER_PAGEVIEWS", raw)
        if (raw := get("FOOTFALL_DEFAULT_SITE")) is not None:
            kwargs["default_site"] = raw
        if (raw := get("FOOTFALL_CORS_ORIGINS")) is not None:
            origins = _parse_list(raw)
            if "*" in origins:
                raise ConfigurationError(
                    "FOOTFALL_CORS_ORIGINS may not contain '*': the track endpoint answers with "
                    "credentials, and the CORS standard forbids '*' with credentials; list exact origins"
                )
            kwargs["cors_origins"] = tuple(o.rstrip("/") for o in origins)
        if (raw := get("FOOTFALL_RESPECT_GPC")) is not None:
            kwargs["respect_gpc"] = _parse_bool("FOOTFALL_RESPECT_GPC", raw)
        if (raw := get("FOOTFALL_ADMIN_TOKEN")) is not None:
            kwargs["admin_token"] = raw
        if (raw := get("FOOTFALL_REDIS_URL")) is not None:
            kwargs["redis_url"] = raw
        if (raw := get("FOOTFALL_MONGODB_URI")) is not None:
            kwargs["mongodb_uri"] = raw
        if (raw := get("FOOTFALL_REDIS_SOCKET_TIMEOUT")) is not None:
            try:
                kwargs["redis_socket_timeout"] = float(raw)
            except ValueError:
                raise ConfigurationError(
                    f"FOOTFALL_REDIS_SOCKET_TIMEOUT={raw!r} is not a number of seconds"
                ) from None
        if (raw := get("FOOTFALL_INPROCESS_DRAIN")) is not None:
            kwargs["inprocess_drain"] = _parse_bool("FOOTFALL_INPROCESS_DRAIN", raw)
        if (raw := get("FOOTFALL_DRAIN_BATCH_SIZE")) is not None:
            kwargs["drain_batch_size"] = _parse_seconds("FOOTFALL_DRAIN_BATCH_SIZE", raw)
        if (raw := get("FOOTFALL_DRAIN_CLAIM_IDLE")) is not None:
            kwargs["drain_claim_idle"] = float(_parse_seconds("FOOTFALL_DRAIN_CLAIM_IDLE", raw))
        if (raw := get("FOOTFALL_VISITOR_NUMBER_DIGITS")) is not None:
            kwargs["visitor_number_digits"] = _parse_seconds("FOOTFALL_VISITOR_NUMBER_DIGITS", raw)
        if (raw := get("FOOTFALL_VISITOR_NUMBER_BLOCK")) is not None:
            kwargs["visitor_number_block"] = _parse_seconds("FOOTFALL_VISITOR_NUMBER_BLOCK", raw)
        if (raw := get("FOOTFALL_TRUSTED_PROXIES")) is not None:
            from footfall.geo import parse_trusted_proxies

            kwargs["trusted_proxies"] = _parse_list(raw)
            parse_trusted_proxies(kwargs["trusted_proxies"])  # malformed entries fail at start-up
        if (raw := get("FOOTFALL_GEOIP_DB")) is not None:
            kwargs["geoip_db"] = raw
        if (raw := get("FOOTFALL_DATA_DIR")) is not None:
            kwargs["data_dir"] = raw
        if (raw := get("FOOTFALL_PUBLIC_STATS")) is not None:
            kwargs["public_stats"] = _parse_bool("FOOTFALL_PUBLIC_STATS", raw)
        if (raw := get("FOOTFALL_ACTIVE_WINDOW")) is not None:
            kwargs["active_window"] = _parse_seconds("FOOTFALL_ACTIVE_WINDOW", raw)
        if (raw := get("FOOTFALL_TIMEZONE")) is not None:
            kwargs["timezone"] = _parse_zone("FOOTFALL_TIMEZONE", raw)
        return cls(**kwargs)

    def with_overrides(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied (a frozen dataclass cannot be edited in place)."""
        return replace(self, **changes)

    @property
    def zone(self) -> ZoneInfo:
        """The time zone whose calendar day is "today" in the live numbers (``FOOTFALL_TIMEZONE``).

        :raises ConfigurationError: ``timezone`` is not a zone zoneinfo knows.
        """
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"FOOTFALL_TIMEZONE={self.timezone!r} is not an IANA time zone") from None

    @property
    def signing_keys(self) -> tuple[str, ...]:
        """The current key first, then the fallbacks.

        :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY`` is configured.
        """
        if not self.secret_key:
            raise ConfigurationError(
                "FOOTFALL_SECRET_KEY is not set: footfall signs its cookies with it and refuses to "
                "run unsigned (embedded mode generates one into FOOTFALL_DATA_DIR)"
            )
        return (self.secret_key, *self.secret_key_fallbacks)
