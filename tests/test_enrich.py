"""``footfall.enrich``: User-Agent → device, browser, OS on the real corpora of ``shared/data/user-agents``;
the referrer-host and UTM rules of ``docs/data-model.md``.

Measured with ua-parser 1.0.2 (ua-parser-builtins 202610) and user-agents 2.2.0 on isbot-browsers.yml
(555 real browsers): a browser family for 504 (90.8 %), an OS family for 478 (86.1 %), a device class
for 465 (83.8 %); on isbot-crawlers.yml (626 crawlers) 464 (74.1 %) get no device class. The suite pins
those rates minus a margin, as the crawler-detection tests do.
"""

from __future__ import annotations

import pytest

from footfall.enrich import MAX_UTM_CHARS, UserAgentFacts, describe_user_agent, referrer_host, utm_fields
from tests.conftest import SHARED_DATA
from tests.middleware.test_mw_bots import flatten, read_isbot_yaml

USER_AGENTS = SHARED_DATA / "user-agents"
MIN_BROWSER_NAMED = 0.88
MIN_OS_NAMED = 0.84
MIN_DEVICE_CLASSED = 0.81
MIN_CRAWLERS_WITHOUT_DEVICE = 0.70


@pytest.fixture(scope="module")
def browser_groups() -> dict[str, list[str]]:
    return read_isbot_yaml(USER_AGENTS / "isbot-browsers.yml")


def share(values: list[object]) -> float:
    return sum(value is not None for value in values) / len(values)


# --- User-Agent -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [  # each string is a line of isbot-browsers.yml
        pytest.param("Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                     "Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1",
                     ("mobile", "Mobile Safari", "iOS"), id="iPhone Safari"),
        pytest.param("Mozilla/5.0 (iPad; CPU OS 12_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                     "Mobile/16C50 Flipboard/4.2.32", ("tablet", "Flipboard", "iOS"), id="iPad app"),
        pytest.param("Mozilla/5.0 (Linux; Android 4.4.2; SM-G7102 Build/KOT49H) AppleWebKit/537.36 (KHTML, like "
                     "Gecko) Chrome/62.0.3202.84 Mobile Safari/537.36",
                     ("mobile", "Chrome Mobile", "Android"), id="Android Chrome"),
        pytest.param("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_5) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/74.0.3729.169 Safari/537.36", ("desktop", "Chrome", "Mac OS X"), id="Mac Chrome"),
        pytest.param("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/81.0.4044.113 Safari/537.36 Edg/81.0.416.62", ("desktop", "Edge", "Windows"),
                     id="Windows Edge"),
        pytest.param("Mozilla/5.0 (X11; CrOS x86_64 13904.66.0) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/91.0.4472.114 Safari/537.36", ("desktop", "Chrome", "Chrome OS"), id="Chromebook"),
        pytest.param("Mozilla/5.0 (X11; Ubuntu; Linux i686; rv:24.0) Gecko/20100101 Firefox/24.0",
                     ("desktop", "Firefox", "Ubuntu"), id="Ubuntu Firefox"),
        pytest.param("Mozilla/5.0 (Linux; U; Android 2.3.4; en-us; Kindle Fire Build/GINGERBREAD) AppleWebKit/533.1 "
                     "(KHTML, like Gecko) Version/4.0 Mobile Safari/533", ("tablet", "Android", "Android"),
                     id="Kindle Fire"),
    ],
)
def test_known_user_agents(browser_groups, user_agent: str, expected: tuple[str, str, str]) -> None:
    assert user_agent in flatten(browser_groups), "the case is a line of the corpus"
    assert describe_user_agent(user_agent) == UserAgentFacts(*expected)


@pytest.mark.parametrize(
    ("group", "browser", "device"),
    [
        pytest.param("Vivaldi", "Vivaldi", "desktop", id="Vivaldi"),
        pytest.param("Brave", "Brave", None, id="Brave (desktop and mobile)"),
        pytest.param("Kindle", None, "tablet", id="Kindle"),
    ],
)
def test_whole_corpus_groups(browser_groups, group: str, browser: str | None, device: str | None) -> None:
    facts = [describe_user_agent(ua) for ua in browser_groups[group]]
    assert len(facts) >= 4
    if browser is not None:
        assert {f.browser for f in facts} == {browser}
    if device is not None:
        assert {f.device for f in facts} == {device}
    assert all(f.os is not None and f.device is not None for f in facts)


def test_browser_corpus_rates_and_values(browser_groups) -> None:
    facts = [describe_user_agent(ua) for ua in flatten(browser_groups)]
    assert len(facts) == 555
    assert share([f.browser for f in facts]) >= MIN_BROWSER_NAMED
    assert share([f.os for f in facts]) >= MIN_OS_NAMED
    assert share([f.device for f in facts]) >= MIN_DEVICE_CLASSED
    assert {f.device for f in facts} == {"desktop", "mobile", "tablet", None}
    names = {f.browser for f in facts} | {f.os for f in facts}
    assert "Other" not in names and "" not in names, "ua-parser's 'Other' is stored as null"


def test_most_crawlers_are_no_device() -> None:
    crawlers = flatten(read_isbot_yaml(USER_AGENTS / "isbot-crawlers.yml"))
    without = sum(describe_user_agent(ua).device is None for ua in crawlers)
    assert without / len(crawlers) >= MIN_CRAWLERS_WITHOUT_DEVICE


@pytest.mark.parametrize("user_agent", ["", "   ", "x", "-", "\x00\x01"])
def test_user_agents_that_say_nothing(user_agent: str) -> None:
    assert describe_user_agent(user_agent) == UserAgentFacts(None, None, None)


def test_a_library_client_has_a_browser_but_no_device() -> None:
    assert describe_user_agent("curl/8.5.0") == UserAgentFacts(None, "curl", None)


def test_parsing_is_cached() -> None:
    user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:130.0) Gecko/20100101 Firefox/130.0 cache-test"
    before = describe_user_agent.cache_info()
    first = describe_user_agent(user_agent)
    second = describe_user_agent(user_agent)
    after = describe_user_agent.cache_info()
    assert first is second
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)


# --- referrer host ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("referrer", "host", "expected"),
    [
        pytest.param("https://www.google.com/search?q=x", "shop.example", "google.com", id="www. removed"),
        pytest.param("HTTPS://News.Example:8443/a", "shop.example", "news.example", id="lowercased, port removed"),
        pytest.param("https://user:pw@news.example/", "shop.example", "news.example", id="user info removed"),
        pytest.param("https://www2.news.example/", "shop.example", "www2.news.example", id="only www. is removed"),
        pytest.param("https://news.example./", "shop.example", "news.example", id="trailing dot"),
        pytest.param("https://shop.example/cart", "shop.example", None, id="same site"),
        pytest.param("https://www.shop.example/cart", "shop.example", None, id="same site with www. in referrer"),
        pytest.param("https://shop.example/cart", "www.shop.example", None, id="same site with www. in host"),
        pytest.param("https://shop.example/cart", "shop.example:8000", None, id="host with a port"),
        pytest.param("https://blog.shop.example/", "shop.example", "blog.shop.example", id="subdomain is external"),
        pytest.param("https://shop.example/", "", "shop.example", id="unknown host: every referrer external"),
        pytest.param("android-app://com.google.android.gm/", "shop.example", "com.google.android.gm",
                     id="app referrer"),
        pytest.param("", "shop.example", None, id="empty"),
        pytest.param("/relative/page", "shop.example", None, id="not absolute"),
        pytest.param("news.example", "shop.example", None, id="no scheme"),
        pytest.param("http://[::1", "shop.example", None, id="unparsable"),
        pytest.param("https://", "shop.example", None, id="no host"),
    ],
)
def test_referrer_host(referrer: str, host: str, expected: str | None) -> None:
    assert referrer_host(referrer, host) == expected


# --- UTM ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("utm_source=news&utm_medium=email&utm_campaign=spring", ("news", "email", "spring"), id="all"),
        pytest.param("utm_source=%20News%20Letter+", ("News Letter", None, None), id="decoded and trimmed"),
        pytest.param("utm_source=&utm_medium=%20", (None, None, None), id="empty values are null"),
        pytest.param("utm_source=a&utm_source=b", ("a", None, None), id="first value"),
        pytest.param("utm_source=&utm_source=b", ("b", None, None), id="first non-empty value"),
        pytest.param("UTM_SOURCE=x&utm_sourcex=y", (None, None, None), id="keys match exactly"),
        pytest.param("", (None, None, None), id="no query"),
        pytest.param("q=utm_source", (None, None, None), id="not a parameter"),
        pytest.param("utm_campaign=" + "c" * 300, (None, None, "c" * MAX_UTM_CHARS), id="cut to 256 characters"),
        pytest.param("utm_source=%ff", ("\ufffd", None, None), id="undecodable bytes replaced"),
    ],
)
def test_utm_fields(query: str, expected: tuple[str | None, str | None, str | None]) -> None:
    assert utm_fields(query) == dict(zip(("utm_source", "utm_medium", "utm_campaign"), expected, strict=True))
