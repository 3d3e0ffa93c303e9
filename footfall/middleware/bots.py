"""Crawler detection with a maintained crawler list: the ``crawlerdetect`` package.

crawlerdetect (a port of the PHP CrawlerDetect project, regularly updated) matches a User-Agent
against ~1,000 crawler patterns. The result depends only on the string, and real traffic repeats a
small set of User-Agents, so answers are cached.
"""

from __future__ import annotations

from functools import lru_cache

from crawlerdetect import CrawlerDetect

__all__ = ["is_crawler"]

_detector = CrawlerDetect()


@lru_cache(maxsize=4096)
def is_crawler(user_agent: str) -> bool:
    """Whether ``user_agent`` is a known crawler, bot or spider (crawlerdetect's list).

    :param user_agent: a non-empty ``User-Agent`` header value.
    """
    return bool(_detector.is_crawler(user_agent))
