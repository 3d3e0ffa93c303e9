"""Where a request comes from: its client IP (behind trusted proxies only) and that IP's country.

Issue 7: "Resolve the request's IP (honouring ``FOOTFALL_TRUSTED_PROXIES`` for ``X-Forwarded-For``,
never blindly) to a country at ingest with a library that ships its data (e.g. ``geoip2fast``) or a
MaxMind ``.mmdb`` from ``FOOTFALL_GEOIP_DB`` (then city too); store the country code (and city when
known) on the session, never the IP."

The IP is used in the request path and dropped there: only the :class:`Location` is queued.

``X-Forwarded-For`` is a list each proxy appends the address it received from to; anyone can send
one, so only the entries added by proxies we trust may be believed. :func:`client_ip` walks it from
the right, the way OWASP and MDN describe ("the rightmost IP not belonging to a trusted proxy"),
and only when the socket peer itself is a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from footfall.errors import ConfigurationError

__all__ = [
    "Location",
    "GeoLookup",
    "Geoip2FastLookup",
    "MaxMindLookup",
    "UNKNOWN",
    "parse_trusted_proxies",
    "client_ip",
    "build_geo_lookup",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Location:
    """Where an IP is: ISO 3166-1 alpha-2 ``country_code`` (uppercase), the country's English
    ``country_name``, and ``city`` (only from a MaxMind city database); each ``None`` when unknown."""

    country_code: str | None = None
    country_name: str | None = None
    city: str | None = None

    @property
    def label(self) -> str:
        """``"<country name>, <CC>"`` (the shape of ``/api/stats``' ``locations`` keys), or ``""``."""
        if not self.country_code:
            return ""
        return f"{self.country_name or self.country_code}, {self.country_code}"


UNKNOWN = Location()


def parse_trusted_proxies(items: Iterable[str]) -> tuple[Network, ...]:
    """Parse ``FOOTFALL_TRUSTED_PROXIES`` entries: IP addresses or CIDR networks (``10.0.0.0/8``).

    :raises ConfigurationError: an entry is neither (the message names it).
    """
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise ConfigurationError(
                f"FOOTFALL_TRUSTED_PROXIES entry {item!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = raw.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:443"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]) -> str | None:
    """The client's IP address.

    The socket peer (``remote_addr``) is the client unless it is a trusted proxy; then the
    ``X-Forwarded-For`` entries are read from the right, skipping trusted proxies, and the first
    other one is the client. A malformed entry stops the walk at the last trusted hop (no guessing).
    With no trusted proxies configured, ``X-Forwarded-For`` is ignored entirely.

    :param remote_addr: the peer address (WSGI ``REMOTE_ADDR``, ASGI ``scope["client"][0]``).
    :param forwarded_for: the ``X-Forwarded-For`` header(s), comma-joined, or ``None``.
    :param trusted: networks of proxies whose ``X-Forwarded-For`` entries are believed.
    :return: the address as text, or ``None`` when there is no usable address.
    """
    peer = _address(remote_addr) if remote_addr else None
    if peer is None:
        return None
    if not trusted or not forwarded_for or not _trusted(peer, trusted):
        return str(peer)
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


class GeoLookup(Protocol):
    """Anything that turns an IP address into a :class:`Location`."""

    def locate(self, ip: str | None) -> Location:
        """The location of ``ip`` (:data:`UNKNOWN` for ``None``, private, or unlisted addresses)."""
        ...


def _is_public(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


class Geoip2FastLookup:
    """Countries from ``geoip2fast``'s bundled data file (IPv4; no city). The data loads on first
    use (about a tenth of a second), once per process; lookups are cached.

    :param cache_size: how many distinct IPs to remember.
    """

    def __init__(self, cache_size: int = 65536) -> None:
        self._reader: Any = None
        self._lock = threading.Lock()
        self._cached = lru_cache(maxsize=cache_size)(self._locate)

    def _load(self) -> Any:
        with self._lock:
            if self._reader is None:
                from geoip2fast import GeoIP2Fast

                self._reader = GeoIP2Fast()
        return self._reader

    def _locate(self, ip: str | None) -> Location:
        if not ip or not _is_public(ip):
            return UNKNOWN
        result = (self._reader or self._load()).lookup(ip)
        code = getattr(result, "country_code", "") or ""
        if len(code) != 2 or not code.isalpha():  # "--" = not found / private
            return UNKNOWN
        return Location(code.upper(), getattr(result, "country_name", None) or None, None)

    def locate(self, ip: str | None) -> Location:
        """The location of ``ip``; see :class:`GeoLookup`."""
        return self._cached(ip)


class MaxMindLookup:
    """Countries and cities from a MaxMind ``.mmdb`` (GeoLite2/GeoIP2 Country or City, or any
    database of the same record shape), read with MaxMind's ``maxminddb`` reader.

    :param path: the ``.mmdb`` file (``FOOTFALL_GEOIP_DB``).
    :param cache_size: how many distinct IPs to remember.
    :raises ConfigurationError: the file cannot be opened or is not a MaxMind database, or the
        ``maxminddb`` package is missing (``pip install 'footfall[geoip]'``).
    """

    def __init__(self, path: str, cache_size: int = 65536) -> None:
        try:
            import maxminddb
        except ImportError:
            raise ConfigurationError(
                "FOOTFALL_GEOIP_DB needs the maxminddb package: pip install 'footfall[geoip]'"
            ) from None
        try:
            self._reader = maxminddb.open_database(path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise ConfigurationError(f"FOOTFALL_GEOIP_DB={path!r} cannot be read as a MaxMind database: {exc}") from exc
        self._cached = lru_cache(maxsize=cache_size)(self._locate)

    def _locate(self, ip: str | None) -> Location:
        if not ip or not _is_public(ip):
            return UNKNOWN
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return UNKNOWN
        if not isinstance(record, dict):
            return UNKNOWN
        country = record.get("country") or record.get("registered_country") or {}
        code = country.get("iso_code")
        if not isinstance(code, str) or len(code) != 2:
            return UNKNOWN
        name = (country.get("names") or {}).get("en")
        city = ((record.get("city") or {}).get("names") or {}).get("en")
        return Location(code.upper(), name if isinstance(name, str) else None, city if isinstance(city, str) else None)

    def locate(self, ip: str | None) -> Location:
        """The location of ``ip``; see :class:`GeoLookup`."""
        return self._cached(ip)

    def close(self) -> None:
        """Close the database file."""
        self._reader.close()


def build_geo_lookup(geoip_db: str | None) -> GeoLookup:
    """The lookup the settings ask for: a MaxMind database when ``FOOTFALL_GEOIP_DB`` names one,
    else ``geoip2fast``'s bundled country data.

    :raises ConfigurationError: see :class:`MaxMindLookup`.
    """
    if geoip_db:
        return MaxMindLookup(geoip_db)
    return Geoip2FastLookup()
