"""Enrichment of recorded requests, for the dashboards' dimensions: pure functions, no I/O.

The drain (:mod:`footfall.stores.documents`) and the log importer derive, from facts the request
carried (``docs/data-model.md``):

- from the User-Agent: ``device`` (``"desktop"``, ``"mobile"``, ``"tablet"``, via the
  ``user-agents`` package), ``browser`` and ``os`` (ua-parser's families), each ``None`` when the
  User-Agent says nothing (ua-parser's ``"Other"``). Parsing is cached (LRU), since a site's
  traffic repeats a few hundred User-Agents;
- from the referrer and the request's own host: ``referrer_host``;
- from the page's query string: ``utm_source``, ``utm_medium``, ``utm_campaign``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import user_agents

__all__ = ["UserAgentFacts", "describe_user_agent", "referrer_host", "utm_fields", "UTM_KEYS", "MAX_UTM_CHARS"]

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")
MAX_UTM_CHARS = 256  # docs/data-model.md: UTM values trimmed, at most 256 characters
USER_AGENT_CACHE = 4096  # distinct User-Agents kept parsed
_UNKNOWN = "Other"  # ua-parser's family when no pattern matched

Device = Literal["desktop", "mobile", "tablet"]


@dataclass(frozen=True, slots=True)
class UserAgentFacts:
    """What a User-Agent says about the device.

    :ivar device: ``"desktop"``, ``"mobile"``, ``"tablet"``, or ``None`` (a bot, a library, an
        unknown client).
    :ivar browser: ua-parser's browser family (``"Chrome"``, ``"Mobile Safari"``) or ``None``.
    :ivar os: ua-parser's OS family (``"Windows"``, ``"iOS"``, ``"Mac OS X"``) or ``None``.
    """

    device: Device | None
    browser: str | None
    os: str | None


NO_FACTS = UserAgentFacts(None, None, None)


@functools.lru_cache(maxsize=USER_AGENT_CACHE)
def describe_user_agent(user_agent: str) -> UserAgentFacts:
    """Device class, browser and OS of a User-Agent header.

    The device class is the ``user-agents`` package's (``is_tablet``, then ``is_mobile``, then
    ``is_pc``; its rules build on ua-parser's device, OS and browser families); the browser and OS
    are ua-parser's families (uap-core's regexes), with ``"Other"`` (nothing matched) as ``None``.
    A User-Agent the parser cannot classify at all gives ``None`` for all three.

    :param user_agent: the header, ``""`` when the request had none.
    :return: the :class:`UserAgentFacts` (cached per distinct value, up to 4096 of them).
    """
    if not user_agent.strip():
        return NO_FACTS
    parsed = user_agents.parse(user_agent)
    device: Device | None = None
    if parsed.is_tablet:
        device = "tablet"
    elif parsed.is_mobile:
        device = "mobile"
    elif parsed.is_pc:
        device = "desktop"
    return UserAgentFacts(device, _family(parsed.browser.family), _family(parsed.os.family))


def _family(family: str | None) -> str | None:
    return None if not family or family == _UNKNOWN else family


def _bare_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def referrer_host(referrer: str, host: str) -> str | None:
    """The visit's external referrer host, as ``docs/data-model.md`` defines ``referrer_host``.

    :param referrer: the ``Referer`` header (or ``document.referrer``), ``""`` for none.
    :param host: the request's own host (``Host`` header, lowercase, no port), ``""`` when unknown;
        with ``""`` no referrer counts as same-site.
    :return: the referrer's host, lowercased, without port, user info or a leading ``www.``; ``None``
        when the referrer is empty, has no host (not an absolute URL) or cannot be parsed, or is
        same-site (its host equals ``host``, both without ``www.``).
    """
    if not referrer:
        return None
    try:
        name = urlsplit(referrer.strip()).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if not name:
        return None
    bare = _bare_host(name)
    if not bare or (host and bare == _bare_host(host.split(":", 1)[0])):
        return None
    return bare


def utm_fields(query: str) -> dict[str, str | None]:
    """The UTM parameters of a page's query string (Google Analytics' campaign parameters).

    :param query: the query string without ``?`` (``utm_source=news&utm_medium=email``).
    :return: ``{"utm_source", "utm_medium", "utm_campaign"}``, each the first non-empty value, trimmed and
        cut to 256 characters, or ``None`` when absent or empty. Keys match exactly (lower case).
    """
    if "utm_" not in query:
        return dict.fromkeys(UTM_KEYS)
    values = parse_qs(query, keep_blank_values=True)
    fields: dict[str, str | None] = {}
    for key in UTM_KEYS:
        value = next((v.strip() for v in values.get(key, ()) if v.strip()), "")
        fields[key] = value[:MAX_UTM_CHARS] or None
    return fields
