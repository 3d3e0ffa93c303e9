"""The sans-I/O core driven without sockets: classification, the three cases, and the TTL boundary
judged with a simulated clock (the way the log importer uses it)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from footfall.middleware.bots import is_crawler
from footfall.middleware.core import (
    Case,
    Identity,
    Visit,
    claim_session,
    classify_request,
    is_excluded_path,
    resolve_visit,
    session_is_active,
)
from footfall.settings import DEFAULT_EXCLUDE_PATHS

FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
TTL = 30 * 60  # seconds, the default session TTL
VISITOR = "0b6d1b9e-8a57-4d2e-9a8f-3c1d2e4f5a6b"
SESSION = "kq1X0dY7b3M2nP9rT5vW8g"
FRESH_VISITOR = "4f1e2d3c-0000-4000-8000-123456789abc"
FRESH_SESSION = "FRESHfreshFRESHfresh00"


@pytest.mark.parametrize(
    ("method", "path", "user_agent", "expected"),
    [
        pytest.param("GET", "/", FIREFOX_UA, "tracked", id="browser GET is tracked"),
        pytest.param("POST", "/checkout", FIREFOX_UA, "tracked", id="browser POST is tracked"),
        pytest.param("HEAD", "/", FIREFOX_UA, "excluded", id="HEAD is excluded"),
        pytest.param("OPTIONS", "/", FIREFOX_UA, "excluded", id="OPTIONS is excluded"),
        pytest.param("GET", "/static/app.css", FIREFOX_UA, "excluded", id="under /static/ is excluded"),
        pytest.param("GET", "/static", FIREFOX_UA, "excluded", id="/static itself is excluded"),
        pytest.param("GET", "/staticky", FIREFOX_UA, "tracked", id="/staticky is not under /static/"),
        pytest.param("GET", "/favicon.ico", FIREFOX_UA, "excluded", id="favicon is excluded"),
        pytest.param("GET", "/robots.txt", FIREFOX_UA, "excluded", id="robots.txt is excluded"),
        pytest.param("GET", "/robots.txt.bak", FIREFOX_UA, "tracked", id="robots.txt.bak is not robots.txt"),
        pytest.param("GET", "/", None, "crawler", id="no User-Agent counts as a crawler"),
        pytest.param("GET", "/", "", "crawler", id="empty User-Agent counts as a crawler"),
        pytest.param("GET", "/", "   ", "crawler", id="blank User-Agent counts as a crawler"),
        pytest.param("GET", "/", GOOGLEBOT_UA, "crawler", id="Googlebot is a crawler"),
        pytest.param("HEAD", "/", GOOGLEBOT_UA, "excluded",
                     id="exclusion is decided before the crawler check"),
    ],
)
def test_classify_request(method: str, path: str, user_agent: str | None, expected: str) -> None:
    kind = classify_request(
        method, path, user_agent, exclude_paths=DEFAULT_EXCLUDE_PATHS, is_crawler=is_crawler
    )
    assert kind == expected


@pytest.mark.parametrize(
    ("path", "entries", "expected"),
    [
        pytest.param("/admin/users", ("/admin",), True, id="entry without slash covers the subtree"),
        pytest.param("/admin", ("/admin/",), True, id="entry with slash covers the directory itself"),
        pytest.param("/administrator", ("/admin",), False, id="segment boundary is respected"),
        pytest.param("/", (), False, id="no entries exclude nothing"),
        pytest.param("/anything", ("/",), True, id="root entry excludes everything"),
    ],
)
def test_is_excluded_path(path: str, entries: tuple[str, ...], expected: bool) -> None:
    assert is_excluded_path(path, entries) is expected


def test_session_is_active_at_exactly_ttl_is_false(clock) -> None:
    last_seen = clock()
    clock.advance(TTL)
    assert clock() - last_seen == timedelta(seconds=TTL)
    assert session_is_active(last_seen, clock(), TTL) is False


def test_session_is_active_one_microsecond_before_ttl_is_true(clock) -> None:
    last_seen = clock()
    clock.now += timedelta(seconds=TTL) - timedelta(microseconds=1)
    assert session_is_active(last_seen, clock(), TTL) is True


@pytest.mark.parametrize(
    ("identity", "active", "case", "visitor_id", "session_id"),
    [
        pytest.param(Identity(None, None), False, Case.NEW_VISITOR, FRESH_VISITOR, FRESH_SESSION,
                     id="no cookies is a new visitor"),
        pytest.param(Identity(None, SESSION), True, Case.NEW_VISITOR, FRESH_VISITOR, FRESH_SESSION,
                     id="a session cookie without a valid visitor cookie is still a new visitor"),
        pytest.param(Identity(VISITOR, SESSION), True, Case.SAME_SESSION, VISITOR, SESSION,
                     id="active session continues"),
        pytest.param(Identity(VISITOR, SESSION), False, Case.EXPIRED_SESSION, VISITOR, FRESH_SESSION,
                     id="expired session reuses visitor"),
        pytest.param(Identity(VISITOR, None), True, Case.EXPIRED_SESSION, VISITOR, FRESH_SESSION,
                     id="visitor without session cookie starts a session whatever the store says"),
    ],
)
def test_claim_and_resolve(identity, active, case, visitor_id, session_id, clock) -> None:
    claim = claim_session(identity, fresh_visitor_id=FRESH_VISITOR, fresh_session_id=FRESH_SESSION)
    visit = resolve_visit(claim, session_active=active, now=clock())
    assert visit == Visit(case, visitor_id, session_id, clock())
    assert visit.is_new_visitor is (case is Case.NEW_VISITOR)
    assert visit.is_new_session is (case is not Case.SAME_SESSION)
    assert visit.sets_visitor_cookie is (case is not Case.SAME_SESSION)


def test_new_visitor_claims_no_session() -> None:
    claim = claim_session(
        Identity(None, SESSION), fresh_visitor_id=FRESH_VISITOR, fresh_session_id=FRESH_SESSION
    )
    assert claim.is_new_visitor is True
    assert claim.claimed_session_id is None


def test_three_cases_in_sequence_with_simulated_clock(clock) -> None:
    """Drive the core like the log importer: the store's answer is ``session_is_active`` on the
    session's last activity, and the clock moves to exactly the boundaries."""
    last_seen: dict[str, object] = {}

    def request(identity: Identity, fresh_visitor: str, fresh_session: str) -> Visit:
        claim = claim_session(identity, fresh_visitor_id=fresh_visitor, fresh_session_id=fresh_session)
        seen = last_seen.get(claim.claimed_session_id) if claim.claimed_session_id else None
        active = seen is not None and session_is_active(seen, clock(), TTL)  # type: ignore[arg-type]
        visit = resolve_visit(claim, session_active=active, now=clock())
        last_seen[visit.session_id] = visit.at
        return visit

    first = request(Identity(None, None), "v-1", "s-1")
    assert (first.case, first.visitor_id, first.session_id) == (Case.NEW_VISITOR, "v-1", "s-1")

    clock.now += timedelta(seconds=TTL) - timedelta(microseconds=1)
    second = request(Identity("v-1", "s-1"), "v-unused", "s-unused")
    assert (second.case, second.visitor_id, second.session_id) == (Case.SAME_SESSION, "v-1", "s-1")

    clock.advance(TTL)  # exactly TTL after the second request, which slid the session
    third = request(Identity("v-1", "s-1"), "v-unused", "s-2")
    assert (third.case, third.visitor_id, third.session_id) == (Case.EXPIRED_SESSION, "v-1", "s-2")
    assert third.at == clock()


def test_visit_is_frozen(clock) -> None:
    visit = Visit(Case.NEW_VISITOR, VISITOR, SESSION, clock())
    with pytest.raises(dataclasses.FrozenInstanceError):
        visit.session_id = "other"  # type: ignore[misc]
