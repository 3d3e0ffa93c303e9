"""Crawlers, requests without a User-Agent and excluded requests: answered by the app as usual, no
cookie, nothing in Redis or MongoDB. Detection is measured on real User-Agent corpora
(``shared/data/user-agents``); crawlerdetect does not know every bot, so the suite pins a measured
lower bound rather than claiming 100 %.

Measured with crawlerdetect 0.4.2: isbot-crawlers.yml 460/626 detected (73.5 %), isbot-browsers.yml
524/555 passed as browsers (94.4 %, 31 false positives), crawler-user-agents.json instances
1818/2116 detected (85.9 %).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from footfall.middleware.bots import is_crawler

# Measured rates minus a small margin: a crawlerdetect update may move them a little either way,
# a real regression (a broken detector, a wrong corpus parse) moves them a lot.
MIN_CRAWLERS_DETECTED = 0.72  # isbot-crawlers.yml
MIN_BROWSERS_PASSED = 0.93  # isbot-browsers.yml
MIN_INSTANCES_DETECTED = 0.84  # crawler-user-agents.json


def read_isbot_yaml(path: Path) -> dict[str, list[str]]:
    """Parse isbot's fixture files without PyYAML: ``name:`` lines, each followed by ``  - value``
    items, values plain or double-quoted (the files use no escapes, comments or other YAML)."""
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("  - "):
            if current is None:
                raise ValueError(f"{path.name}:{number}: item before any group")
            value = line[4:].strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            current.append(value)
        elif not line.startswith(" ") and line.rstrip().endswith(":"):
            name = line.rstrip()[:-1].strip('"')
            current = groups.setdefault(name, [])
        else:
            raise ValueError(f"{path.name}:{number}: unexpected line {line!r}")
    return groups


def flatten(groups: dict[str, list[str]]) -> list[str]:
    return [ua for values in groups.values() for ua in values]


@pytest.fixture(scope="module")
def isbot_crawlers(user_agents_dir: Path) -> list[str]:
    return flatten(read_isbot_yaml(user_agents_dir / "isbot-crawlers.yml"))


@pytest.fixture(scope="module")
def isbot_browsers(user_agents_dir: Path) -> list[str]:
    return flatten(read_isbot_yaml(user_agents_dir / "isbot-browsers.yml"))


@pytest.fixture(scope="module")
def crawler_instances(user_agents_dir: Path) -> list[str]:
    entries = json.loads((user_agents_dir / "crawler-user-agents.json").read_text(encoding="utf-8"))
    return [ua for entry in entries for ua in entry.get("instances", [])]


def test_corpora_parse_completely(isbot_crawlers, isbot_browsers, crawler_instances) -> None:
    # Counts from shared/data/README.md (626 crawlers, 555 browsers) and the JSON file itself.
    assert len(isbot_crawlers) == 626
    assert len(isbot_browsers) == 555
    assert len(crawler_instances) > 2000
    assert all(ua and not ua.startswith(("- ", '"')) for ua in isbot_crawlers + isbot_browsers)


def _rate(user_agents: list[str], want_crawler: bool) -> tuple[float, list[str]]:
    misses = [ua for ua in user_agents if is_crawler(ua) is not want_crawler]
    return 1 - len(misses) / len(user_agents), misses


def test_isbot_crawlers_detection_rate(isbot_crawlers) -> None:
    rate, misses = _rate(isbot_crawlers, want_crawler=True)
    assert rate >= MIN_CRAWLERS_DETECTED, f"{rate:.1%} detected; missed e.g. {misses[:20]}"


def test_isbot_browsers_pass_rate(isbot_browsers) -> None:
    rate, false_positives = _rate(isbot_browsers, want_crawler=False)
    assert rate >= MIN_BROWSERS_PASSED, f"{rate:.1%} passed; flagged e.g. {false_positives[:20]}"


def test_crawler_user_agents_detection_rate(crawler_instances) -> None:
    rate, misses = _rate(crawler_instances, want_crawler=True)
    assert rate >= MIN_INSTANCES_DETECTED, f"{rate:.1%} detected; missed e.g. {misses[:20]}"


@pytest.mark.parametrize(
    "user_agent",
    [
        pytest.param("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                     id="Googlebot"),
        pytest.param("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", id="bingbot"),
        pytest.param("Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)", id="AhrefsBot"),
        pytest.param("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", id="YandexBot"),
        pytest.param("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                     id="facebookexternalhit"),
        pytest.param("curl/8.5.0", id="curl"),
        pytest.param("python-requests/2.31.0", id="python-requests"),
    ],
)
def test_well_known_crawlers_are_detected(user_agent: str) -> None:
    assert is_crawler(user_agent) is True


@pytest.mark.parametrize(
    "user_agent",
    [
        pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/124.0.0.0 Safari/537.36", id="Chrome on Windows"),
        pytest.param("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                     id="Firefox on Linux"),
        pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                     "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1", id="Safari on iPhone"),
        pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51", id="Edge"),
    ],
)
def test_common_browsers_are_not_crawlers(user_agent: str) -> None:
    assert is_crawler(user_agent) is False


# Through the middleware, each adapter ----------------------------------------------------------


def _assert_untouched(redis_client, mongo_db, drain) -> None:
    assert redis_client.dbsize() == 0, "no session, nothing queued"
    assert drain() == 0
    assert mongo_db.sessions.count_documents({}) == 0
    assert mongo_db.page_views.count_documents({}) == 0


def test_every_detected_isbot_crawler_is_served_untracked(
    site, isbot_crawlers, redis_client, mongo_db, drain
) -> None:
    detected = sorted({ua for ua in isbot_crawlers if is_crawler(ua)})
    assert len(detected) > 400
    for user_agent in detected:
        response = site.new_client(user_agent).get("/")
        assert response.status_code == 200, user_agent
        assert b"home" in response.content
        assert response.headers.get_list("set-cookie") == [], user_agent
    assert len(site.seen) == len(detected), "the app answered every crawler itself"
    assert all(seen is None or not hasattr(seen, "session_id") for seen in site.seen)
    _assert_untouched(redis_client, mongo_db, drain)


@pytest.mark.parametrize(
    "user_agent",
    [pytest.param(None, id="no User-Agent header"), pytest.param("", id="empty User-Agent"),
     pytest.param("   ", id="blank User-Agent")],
)
def test_missing_user_agent_is_served_untracked(site, redis_client, mongo_db, drain, user_agent) -> None:
    client = site.new_client(user_agent)
    response = client.get("/whoami")
    assert response.status_code == 200
    assert site.heard[-1]["user-agent"] == user_agent, "the app got the User-Agent as sent"
    assert response.json() == {"visit": None}, "published as None: untracked"
    assert response.headers.get_list("set-cookie") == []
    _assert_untouched(redis_client, mongo_db, drain)


def test_crawler_with_valid_cookies_does_not_slide_the_session(site, redis_client, queued) -> None:
    """A crawler replaying a browser's cookies is still untracked: no slide, no re-issue."""
    site.client.get("/")
    visit = site.last_visit
    key = f"footfall:session:{visit.session_id}"
    redis_client.pexpire(key, 5_000)
    bot = site.new_client("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
    for name, value in site.jar().items():
        site.set_cookie(bot, name, value)
    response = bot.get("/")
    assert site.heard[-1]["cookie"] is not None and "session=" in site.heard[-1]["cookie"]
    assert response.headers.get_list("set-cookie") == []
    assert redis_client.pttl(key) <= 5_000
    assert queued() == 1, "only the browser's visit start"


@pytest.mark.parametrize(
    ("method", "path", "expected_status"),
    [
        pytest.param("HEAD", "/", 200, id="HEAD"),
        pytest.param("OPTIONS", "/", 200, id="OPTIONS"),
        pytest.param("GET", "/static/app.css", 200, id="static file"),
        pytest.param("GET", "/static/deep/dir/app.js", 200, id="nested static file"),
        pytest.param("GET", "/favicon.ico", 200, id="favicon"),
        pytest.param("GET", "/robots.txt", 200, id="robots.txt"),
        pytest.param("GET", "/static", 404, id="the static directory itself, a 404 from the app"),
    ],
)
def test_excluded_requests_are_untracked(site, redis_client, mongo_db, drain, method, path,
                                        expected_status) -> None:
    response = site.client.request(method, path)
    assert response.status_code == expected_status
    assert response.headers.get_list("set-cookie") == []
    assert site.seen == [None], 'the app served it and saw footfall.visit = None'
    _assert_untouched(redis_client, mongo_db, drain)


def test_excluded_request_with_cookies_does_not_slide(site, redis_client, cookies_of, queued) -> None:
    site.client.get("/")
    key = f"footfall:session:{site.last_visit.session_id}"
    redis_client.pexpire(key, 5_000)
    response = site.client.get("/static/app.css")
    assert cookies_of(response) == {}
    assert redis_client.pttl(key) <= 5_000
    assert queued() == 1, "only the page's visit start"


def test_custom_exclude_paths(make_site, redis_client, mongo_db, drain) -> None:
    site = make_site(exclude_paths=("/health",))
    assert site.client.get("/health").status_code == 404
    assert site.client.get("/health/deep").headers.get_list("set-cookie") == []
    _assert_untouched(redis_client, mongo_db, drain)
    response = site.client.get("/static/app.css")  # no longer excluded once the list is replaced
    assert {c.split("=", 1)[0] for c in response.headers.get_list("set-cookie")} == {"session", "visitor_id"}
