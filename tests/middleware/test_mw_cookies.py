"""Signed cookies: ids, signatures, forgeries, key rotation and the ``Set-Cookie`` attributes, first
with :class:`CookieCodec` alone, then on the wire through each adapter."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from footfall.errors import ConfigurationError
from footfall.middleware.async_tracker import build_async_tracker
from footfall.middleware.cookies import CookieCodec, new_session_id, new_visitor_id
from footfall.middleware.core import Case, Identity, Visit
from footfall.settings import Settings
from footfall.stores import build_tracker

OLD_KEY = "old-secret-key-0123456789"
NEW_KEY = "new-secret-key-9876543210"
VISITOR = "0b6d1b9e-8a57-4d2e-9a8f-3c1d2e4f5a6b"
SESSION = "kq1X0dY7b3M2nP9rT5vW8g"
AT = datetime(2026, 1, 15, 12, tzinfo=UTC)


def codec(key: str = OLD_KEY, fallbacks: tuple[str, ...] = (), **settings) -> CookieCodec:
    return CookieCodec(Settings(secret_key=key, secret_key_fallbacks=fallbacks, **settings))


def cookie_header(codec_: CookieCodec, visitor_id: str, session_id: str) -> str:
    """The ``Cookie`` header a browser sends back after a new-visitor response from ``codec_``."""
    pairs = [value.split(";", 1)[0] for value in codec_.set_cookie_headers(
        Visit(Case.NEW_VISITOR, visitor_id, session_id, AT))]
    return "; ".join(pairs)


def test_new_visitor_id_is_uuid4() -> None:
    ids = {new_visitor_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(uuid.UUID(value).version == 4 for value in ids)


def test_new_session_id_has_at_least_128_random_bits() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        assert len(raw) * 8 >= 128


def test_round_trip() -> None:
    c = codec()
    assert c.read(cookie_header(c, VISITOR, SESSION)) == Identity(VISITOR, SESSION)


def test_missing_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="FOOTFALL_SECRET_KEY"):
        CookieCodec(Settings())


def _flip_last_char(signed: str) -> str:
    return signed[:-1] + ("A" if signed[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("make_header", "expected"),
    [
        pytest.param(lambda v, s: f"visitor_id={_flip_last_char(v)}; session={s}", Identity(None, SESSION),
                     id="tampered visitor signature"),
        pytest.param(lambda v, s: f"visitor_id={v}; session={_flip_last_char(s)}", Identity(VISITOR, None),
                     id="tampered session signature"),
        pytest.param(lambda v, s: f"visitor_id={VISITOR}; session={SESSION}", Identity(None, None),
                     id="unsigned ids"),
        pytest.param(lambda v, s: "visitor_id=" + v.replace(VISITOR, VISITOR[::-1]) + "; session=" + s,
                     Identity(None, SESSION), id="value swapped under a valid signature"),
        pytest.param(lambda v, s: f"visitor_id={s}; session={v}", Identity(None, None),
                     id="cookies swapped between names (salts differ)"),
        pytest.param(lambda v, s: "visitor_id=; session=", Identity(None, None), id="empty values"),
        pytest.param(lambda v, s: f"visitor_id={'x' * 5000}; session={s}", Identity(None, SESSION),
                     id="oversized visitor cookie"),
        pytest.param(lambda v, s: "visitor_id=\u00e9\u00e9.\u00e9; session=%%%;;;", Identity(None, None),
                     id="garbage"),
    ],
)
def test_forged_cookie_is_treated_as_absent(make_header, expected: Identity) -> None:
    c = codec()
    header = cookie_header(c, VISITOR, SESSION)
    visitor_value = header.split("visitor_id=")[1].split(";")[0]
    session_value = header.split("session=")[1].split(";")[0]
    assert c.read(make_header(visitor_value, session_value)) == expected


def test_cookie_signed_with_an_unknown_key_is_absent() -> None:
    header = cookie_header(codec(key="someone-else"), VISITOR, SESSION)
    assert codec().read(header) == Identity(None, None)


def test_key_rotation_accepts_old_signs_with_new() -> None:
    old_header = cookie_header(codec(OLD_KEY), VISITOR, SESSION)
    rotated = codec(NEW_KEY, fallbacks=(OLD_KEY,))
    assert rotated.read(old_header) == Identity(VISITOR, SESSION)

    new_header = cookie_header(rotated, VISITOR, SESSION)
    assert codec(NEW_KEY).read(new_header) == Identity(VISITOR, SESSION), "signed with the new key"
    assert codec(OLD_KEY).read(new_header) == Identity(None, None), "not signed with the old key"


def test_after_rotation_without_fallback_old_cookies_are_absent() -> None:
    old_header = cookie_header(codec(OLD_KEY), VISITOR, SESSION)
    assert codec(NEW_KEY).read(old_header) == Identity(None, None)


def test_same_session_reissues_only_the_session_cookie() -> None:
    headers = codec().set_cookie_headers(Visit(Case.SAME_SESSION, VISITOR, SESSION, AT))
    assert [h.split("=", 1)[0] for h in headers] == ["session"]


@pytest.mark.parametrize(
    "case",
    [pytest.param(Case.NEW_VISITOR, id="new visitor"),
     pytest.param(Case.EXPIRED_SESSION, id="expired session")],
)
def test_new_session_issues_both_cookies(case: Case) -> None:
    headers = codec().set_cookie_headers(Visit(case, VISITOR, SESSION, AT))
    assert sorted(h.split("=", 1)[0] for h in headers) == ["session", "visitor_id"]


# On the wire, through each adapter -------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "secure", "session_max_age", "visitor_max_age"),
    [
        pytest.param({}, False, "1800", "31536000", id="defaults with cookie_secure=False"),
        pytest.param({"cookie_secure": True}, True, "1800", "31536000", id="Secure by default"),
        pytest.param({"session_ttl": 600, "visitor_ttl": 86400}, False, "600", "86400",
                     id="Max-Age follows the TTL settings"),
    ],
)
def test_cookie_attributes(
    make_site, cookies_of, overrides, secure, session_max_age, visitor_max_age
) -> None:
    site = make_site(**overrides)
    cookies = cookies_of(site.client.get("/"))
    assert set(cookies) == {"session", "visitor_id"}
    for name, max_age in (("session", session_max_age), ("visitor_id", visitor_max_age)):
        _, attributes = cookies[name]
        assert "httponly" in attributes, name
        assert attributes["samesite"] == "Lax", name
        assert attributes["path"] == "/", name
        assert attributes["max-age"] == max_age, name
        assert ("secure" in attributes) is secure, name
        assert "domain" not in attributes, name


def test_cookie_values_are_signed_ids(site, cookies_of) -> None:
    cookies = cookies_of(site.client.get("/"))
    visit = site.last_visit
    visitor_value, _ = cookies["visitor_id"]
    session_value, _ = cookies["session"]
    assert visitor_value.startswith(f"{visit.visitor_id}|{visit.site}|{visit.visitor_number}.")
    assert len(visitor_value) > len(visit.visitor_id) + 40, "a SHA-256 signature follows the id"
    assert session_value.startswith(visit.session_id + ".")
    assert uuid.UUID(visit.visitor_id).version == 4


def test_cookie_names_follow_settings(make_site, cookies_of) -> None:
    site = make_site(session_cookie_name="ff_s", visitor_cookie_name="ff_v")
    first = cookies_of(site.client.get("/"))
    assert set(first) == {"ff_s", "ff_v"}
    site.client.get("/")
    assert site.last_visit.case is Case.SAME_SESSION


def test_a_ready_tracker_brings_its_settings(make_site, adapter, settings, cookies_of) -> None:
    """``tracker=``: a tracker built elsewhere (``Tracker`` for WSGI, ``AsyncTracker`` for ASGI) is
    used as given, and its settings are the middleware's."""
    build = build_tracker if adapter == "wsgi" else build_async_tracker
    tracker = build(settings.with_overrides(session_cookie_name="given_session"))
    site = make_site(tracker=tracker)
    assert site.middleware.tracker is tracker
    assert site.settings.session_cookie_name == "given_session"
    assert set(cookies_of(site.client.get("/"))) == {"given_session", "visitor_id"}
    site.client.get("/")
    assert site.last_visit.case is Case.SAME_SESSION
