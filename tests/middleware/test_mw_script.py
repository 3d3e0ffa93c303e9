"""GET /analytics/footfall.js (the tracker script) and Global Privacy Control at the track endpoint,
through both adapters. What the script does in a browser: tests/analytics_api/test_tracker_browser.py."""

from __future__ import annotations

import gzip
import re

import pytest

from footfall.errors import FootfallError
from footfall.middleware import script as script_module
from footfall.middleware.script import SOURCE, baked_script
from footfall.settings import Settings

SCRIPT_PATH = "/analytics/footfall.js"
BUDGET = 2048  # bytes, gzipped (issue 7: "budget: <= 2 KB gzipped; measure it")
PAGE_VIEW = {"eventType": "page_view", "path": "/pricing", "title": "Pricing"}


def test_script_fits_its_gzip_budget(settings: Settings) -> None:
    for respect_gpc in (False, True):
        content = baked_script(settings.with_overrides(respect_gpc=respect_gpc)).content
        assert len(gzip.compress(content, compresslevel=9)) <= BUDGET, "over 2 KiB gzipped"


@pytest.mark.parametrize(
    ("overrides", "gpc", "track_path"),
    [
        pytest.param({}, "false", '"/analytics/track"', id="defaults"),
        pytest.param({"respect_gpc": True, "track_path": "/t/e"}, "true", '"/t/e"', id="respect GPC, another path"),
    ],
)
def test_settings_are_baked_into_the_script(site, make_site, overrides, gpc: str, track_path: str) -> None:
    served = make_site(**overrides) if overrides else site
    text = served.client.get(SCRIPT_PATH).text
    assert f"var RESPECT_GPC = {gpc};" in text and f"var TRACK_PATH = {track_path};" in text
    assert "/*FOOTFALL_" not in text, "every tag replaced"
    source = SOURCE.read_text(encoding="utf-8")
    assert text == (source.replace("false /*FOOTFALL_RESPECT_GPC*/", gpc)
                    .replace('"/analytics/track" /*FOOTFALL_TRACK_PATH*/', track_path)), "and nothing else"


def test_script_is_served_by_the_middleware(site, redis_client, cookies_of) -> None:
    response = site.client.get(SCRIPT_PATH)
    assert response.status_code == 200
    assert response.content == baked_script(site.settings).content
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert re.fullmatch(r'"[0-9a-f]{40}"', response.headers["ETag"])
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert site.seen == [], "the wrapped app never sees the script's path"
    assert cookies_of(response) == {} and redis_client.dbsize() == 0, "fetching the script is not a visit"


def test_head_has_the_get_headers_and_no_body(site) -> None:
    got = site.client.get(SCRIPT_PATH)
    head = site.client.head(SCRIPT_PATH)
    assert head.status_code == 200 and head.content == b""
    for name in ("Content-Type", "Content-Length", "ETag", "Cache-Control"):
        assert head.headers[name] == got.headers[name]


@pytest.mark.parametrize(
    ("if_none_match", "status"),
    [
        pytest.param("{etag}", 304, id="same etag is 304"),
        pytest.param("W/{etag}", 304, id="weak form of it is 304"),
        pytest.param('"other", {etag}', 304, id="in a list is 304"),
        pytest.param("*", 304, id="star is 304"),
        pytest.param('"other"', 200, id="another etag is 200"),
    ],
)
def test_revalidation(site, if_none_match: str, status: int) -> None:
    etag = site.client.get(SCRIPT_PATH).headers["ETag"]
    response = site.client.get(SCRIPT_PATH, headers={"If-None-Match": if_none_match.format(etag=etag)})
    assert response.status_code == status
    assert response.headers["ETag"] == etag
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    if status == 304:
        assert response.content == b""
        assert "Content-Length" not in response.headers and "Content-Type" not in response.headers
    else:
        assert response.content == baked_script(site.settings).content


def test_the_etag_changes_with_the_baked_settings(make_site) -> None:
    tags = {make_site(respect_gpc=value).client.get(SCRIPT_PATH).headers["ETag"] for value in (False, True)}
    assert len(tags) == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_405(site, method: str) -> None:
    response = site.client.request(method, SCRIPT_PATH)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert method in response.json()["error"]


def test_a_source_with_a_tag_missing_is_refused(tmp_path, monkeypatch, settings) -> None:
    broken = tmp_path / "footfall.js"
    broken.write_text(SOURCE.read_text(encoding="utf-8").replace(" /*FOOTFALL_TRACK_PATH*/", ""), encoding="utf-8")
    monkeypatch.setattr(script_module, "SOURCE", broken)
    script_module._bake.cache_clear()
    try:
        with pytest.raises(FootfallError, match="FOOTFALL_TRACK_PATH"):
            baked_script(settings)
    finally:
        script_module._bake.cache_clear()


# Global Privacy Control at the track endpoint -------------------------------------------------------


@pytest.mark.parametrize(
    ("respect_gpc", "headers", "recorded"),
    [
        pytest.param(True, {"Sec-GPC": "1"}, False, id="respected and sent: nothing recorded"),
        pytest.param(True, {}, True, id="respected, not sent: recorded"),
        pytest.param(True, {"Sec-GPC": "0"}, True, id="respected, sent as 0: recorded"),
        pytest.param(False, {"Sec-GPC": "1"}, True, id="not respected (default): recorded"),
    ],
)
def test_sec_gpc_at_the_track_endpoint(
    make_site, cookies_of, redis_client, mongo_db, drain, respect_gpc: bool, headers: dict[str, str], recorded: bool
) -> None:
    site = make_site(respect_gpc=respect_gpc)
    response = site.track(PAGE_VIEW, headers=headers)
    if recorded:
        assert response.status_code == 200 and response.json()["status"] == "recorded"
        assert drain() == 1 and mongo_db.page_views.count_documents({}) == 1
        return
    assert response.status_code == 204 and response.content == b""
    assert cookies_of(response) == {}, "no visitor or session cookie"
    assert redis_client.dbsize() == 0, "no session, nothing queued"
    assert drain() == 0
    assert mongo_db.sessions.count_documents({}) == mongo_db.page_views.count_documents({}) == 0


def test_gpc_answer_carries_cors_headers(make_site) -> None:
    """So that a cross-origin page's fetch is not reported as a CORS failure."""
    site = make_site(respect_gpc=True)
    response = site.track(PAGE_VIEW, headers={"Sec-GPC": "1", "Origin": "https://shop.example"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_gpc_is_read_from_the_environment() -> None:
    assert Settings.from_env({}).respect_gpc is False
    assert Settings.from_env({"FOOTFALL_RESPECT_GPC": "true"}).respect_gpc is True
    with pytest.raises(FootfallError, match="FOOTFALL_RESPECT_GPC"):
        Settings.from_env({"FOOTFALL_RESPECT_GPC": "maybe"})
