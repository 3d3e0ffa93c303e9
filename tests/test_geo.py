"""Client IP behind trusted proxies, and IP -> country/city (geoip2fast's data and a MaxMind .mmdb)."""

from __future__ import annotations

import pytest

from footfall.errors import ConfigurationError
from footfall.geo import (
    UNKNOWN,
    Geoip2FastLookup,
    Location,
    MaxMindLookup,
    build_geo_lookup,
    client_ip,
    parse_trusted_proxies,
)
from footfall.settings import Settings

PROXIES = parse_trusted_proxies(["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"])


@pytest.mark.parametrize(
    ("remote", "xff", "trusted", "expected"),
    [
        ("203.0.113.9", None, PROXIES, "203.0.113.9"),
        # no trusted proxies: the header is never believed
        ("203.0.113.9", "198.51.100.1", (), "203.0.113.9"),
        ("10.1.2.3", "198.51.100.1", (), "10.1.2.3"),
        # an untrusted peer's header is ignored
        ("203.0.113.9", "198.51.100.1", PROXIES, "203.0.113.9"),
        # trusted peer: rightmost untrusted entry
        ("10.1.2.3", "198.51.100.1", PROXIES, "198.51.100.1"),
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 10.9.9.9", PROXIES, "198.51.100.1"),  # spoofed left entry
        ("192.0.2.1", "198.51.100.1,192.0.2.1", PROXIES, "198.51.100.1"),
        # all hops trusted: the leftmost
        ("10.1.2.3", "10.4.4.4, 10.5.5.5", PROXIES, "10.4.4.4"),
        # garbage stops the walk at the last trusted hop
        ("10.1.2.3", "198.51.100.1, not-an-ip", PROXIES, "10.1.2.3"),
        # ports, brackets, IPv6, IPv4-mapped
        ("10.1.2.3", "198.51.100.1:5555", PROXIES, "198.51.100.1"),
        ("2001:db8::5", "[2001:4860::1]:443", PROXIES, "2001:4860::1"),
        ("::ffff:203.0.113.9", None, PROXIES, "203.0.113.9"),
        (None, "198.51.100.1", PROXIES, None),
        ("garbage", None, PROXIES, None),
    ],
)
def test_client_ip(remote, xff, trusted, expected):
    assert client_ip(remote, xff, trusted) == expected


def test_bad_trusted_proxy_names_the_entry():
    with pytest.raises(ConfigurationError, match="'10.0.0.300'"):
        parse_trusted_proxies(["10.0.0.0/8", "10.0.0.300"])
    with pytest.raises(ConfigurationError, match="nope"):
        Settings.from_env({"FOOTFALL_TRUSTED_PROXIES": "nope"})
    assert Settings.from_env({"FOOTFALL_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}).trusted_proxies == (
        "10.0.0.0/8", "127.0.0.1")


def test_geoip2fast_countries():
    lookup = Geoip2FastLookup()
    # 81.2.69.160 is in MaxMind's test ranges for GB and in the RIPE allocation to a UK ISP.
    found = lookup.locate("81.2.69.160")
    assert found.country_code == "GB" and found.country_name == "United Kingdom" and found.city is None
    assert found.label == "United Kingdom, GB"
    assert lookup.locate("8.8.8.8").country_code == "US"
    for private in ("10.0.0.1", "127.0.0.1", "192.168.1.1", "::1", None, "", "nonsense"):
        assert lookup.locate(private) == UNKNOWN
    assert UNKNOWN.label == ""


@pytest.fixture
def city_db(tmp_path):
    mmdb_writer = pytest.importorskip("mmdb_writer")
    from netaddr import IPSet

    writer = mmdb_writer.MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoIP2-City")
    writer.insert_network(IPSet(["81.2.69.0/24"]), {
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
        "city": {"names": {"en": "London"}},
    })
    writer.insert_network(IPSet(["2001:4860::/32"]), {"country": {"iso_code": "us", "names": {"en": "United States"}}})
    path = tmp_path / "city.mmdb"
    writer.to_db_file(str(path))
    return str(path)


def test_maxmind_city_database(city_db):
    lookup = build_geo_lookup(city_db)
    assert isinstance(lookup, MaxMindLookup)
    assert lookup.locate("81.2.69.7") == Location("GB", "United Kingdom", "London")
    assert lookup.locate("2001:4860::1") == Location("US", "United States", None)
    assert lookup.locate("8.8.8.8") == UNKNOWN  # not in this database
    assert lookup.locate("10.0.0.1") == UNKNOWN
    lookup.close()


def test_unreadable_database_is_a_configuration_error(tmp_path):
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(ConfigurationError, match="FOOTFALL_GEOIP_DB"):
        build_geo_lookup(str(bad))
    with pytest.raises(ConfigurationError, match="FOOTFALL_GEOIP_DB"):
        build_geo_lookup(str(tmp_path / "missing.mmdb"))
