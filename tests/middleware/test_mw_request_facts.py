"""What the middleware reads off a request besides cookies (either adapter): the route template of
the page, the page's host (a same-site referrer is no source), and the country of the client IP,
believed from ``X-Forwarded-For`` only behind ``FOOTFALL_TRUSTED_PROXIES``; the IP is never stored."""

from __future__ import annotations

import json

import pytest

GB_IP = "81.2.69.160"  # geoip2fast's bundled data: United Kingdom
US_IP = "8.8.8.8"


def stored_text(mongo_db) -> str:
    """Every document of every collection, as text (to look for an IP anywhere)."""
    return json.dumps([list(mongo_db[name].find()) for name in mongo_db.list_collection_names()], default=str)


def test_route_template_of_a_tracked_page(site, mongo_db, drain, adapter):
    assert site.track({"eventType": "page_view", "path": "/page/pricing?utm_source=news"}).status_code == 200
    assert site.track({"eventType": "page_view", "path": "/nowhere/at/all"}).status_code == 200
    drain()
    routes = {view["path"]: view["route"] for view in mongo_db.page_views.find()}
    expected = "/page/<name>" if adapter == "wsgi" else "/page/{name}"
    assert routes == {"/page/pricing": expected, "/nowhere/at/all": None}
    [session] = mongo_db.sessions.find()
    assert session["routes"] == [expected]
    assert session["utm_source"] == "news"


def test_route_of_a_server_rendered_page(make_site, mongo_db, drain, adapter):
    site = make_site(server_pageviews=True)
    assert site.client.get("/page/about").status_code == 200
    drain()
    [view] = mongo_db.page_views.find()
    assert view["route"] == ("/page/<name>" if adapter == "wsgi" else "/page/{name}")


def test_same_site_referrer_is_no_source(site, mongo_db, drain):
    site.client.get("/", headers={"Referer": "http://testserver/page/a"})
    drain()
    [session] = mongo_db.sessions.find()
    assert session["referrer"] == "http://testserver/page/a"
    assert session["referrer_host"] is None


def test_external_referrer_host(site, mongo_db, drain):
    site.client.get("/", headers={"Referer": "https://www.news.example/story?id=1"})
    drain()
    [session] = mongo_db.sessions.find()
    assert session["referrer_host"] == "news.example"


def test_cross_origin_track_uses_the_origin_as_the_page_host(make_site, mongo_db, drain):
    site = make_site(cors_origins=("https://shop.example",))
    response = site.track({"eventType": "page_view", "path": "/cart", "referrer": "https://shop.example/list"},
                          headers={"Origin": "https://shop.example"})
    assert response.status_code == 200
    drain()
    [session] = mongo_db.sessions.find()
    assert session["referrer_host"] is None  # from the shop's own page: not a source


def test_forwarded_for_ignored_without_trusted_proxies(site, mongo_db, drain):
    site.client.get("/", headers={"X-Forwarded-For": GB_IP})
    drain()
    [session] = mongo_db.sessions.find()
    assert session["country"] is None  # the peer is 127.0.0.1: no country, and the header is not believed


@pytest.mark.parametrize("xff", [GB_IP, f"{US_IP}, {GB_IP}"], ids=["one hop", "spoofed left entry"])
def test_country_behind_a_trusted_proxy(make_site, mongo_db, drain, redis_client, xff):
    site = make_site(trusted_proxies=("127.0.0.1",))
    site.client.get("/", headers={"X-Forwarded-For": xff})
    site.track({"eventType": "page_view", "path": "/page/x"}, headers={"X-Forwarded-For": xff})
    drain()
    [session] = mongo_db.sessions.find()
    assert session["country"] == "GB"  # the rightmost untrusted entry, never the client-chosen left one
    [view] = mongo_db.page_views.find()
    assert view["country"] == "GB"
    text = stored_text(mongo_db)
    assert GB_IP not in text and US_IP not in text and "127.0.0.1" not in text
    # the live numbers count the visit under its country (one visit: the track call continued it)
    assert redis_client.hgetall("footfall:live:default:countries") == {b"GB": b"1"}
    assert redis_client.hget("footfall:live:country-names", "GB") == b"United Kingdom"
