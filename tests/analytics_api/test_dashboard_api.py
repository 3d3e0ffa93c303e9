"""/analytics/api/*: auth on every endpoint, parameters, validation, and the answers of the queries."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from footfall.analytics_api import create_app
from footfall.dashboard_queries import Period, breakdown, list_sites, summarize
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.settings import Settings
from tests.dashboard_queries.data import make_dataset, reference_breakdown, reference_summary

AUTH = {"Authorization": "Bearer test-admin-token"}
RANGE = "start=2025-03-27&end=2025-04-03&tz=Europe/Berlin"
MARCH = Period(date(2025, 3, 27), date(2025, 4, 3), resolve_timezone("Europe/Berlin"))
ENDPOINTS = ["/analytics/api/summary", "/analytics/api/timeseries", "/analytics/api/breakdown?dimension=page",
             "/analytics/api/export?dimension=page", "/analytics/api/sessions", "/analytics/api/sites"]


@pytest.fixture
def dataset():
    return make_dataset()


@pytest.fixture
def app(settings: Settings, dataset):
    app = create_app(settings.with_overrides(timezone="Europe/Berlin"))
    dataset.insert(app.extensions["footfall"].db)
    yield app
    app.extensions["footfall"].close()


def get(app, url: str, **headers: str):
    return app.test_client().get(url, headers={**AUTH, **headers})


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(("headers", "status"), [
    pytest.param({}, 401, id="no token"),
    pytest.param({"Authorization": "Bearer wrong"}, 403, id="wrong token"),
])
def test_every_endpoint_needs_the_admin_token(app, url: str, headers: dict, status: int) -> None:
    response = app.test_client().get(url, headers=headers)
    assert response.status_code == status
    assert response.get_json()["error"]


@pytest.mark.parametrize("url", ENDPOINTS)
def test_every_endpoint_answers_with_the_token(app, url: str) -> None:
    if url.endswith("/sites"):  # takes no parameter
        assert get(app, url).status_code == 200
        assert get(app, f"{url}?{RANGE}").get_json()["parameter"] == "start"
        return
    assert get(app, f"{url}{'&' if '?' in url else '?'}{RANGE}").status_code == 200


def test_summary_with_its_comparison(app, dataset) -> None:
    body = get(app, f"/analytics/api/summary?site=web&{RANGE}").get_json()
    before = MARCH.previous("previous_period")
    expected = reference_summary(dataset, MARCH.start, MARCH.end, "web")
    assert {k: body[k] for k in expected} == expected
    assert body["previous"] == reference_summary(dataset, before.start, before.end, "web")
    assert body["change"]["total_visits"] is None  # nothing before the data set begins
    assert (body["site"], body["start"], body["end"], body["tz"], body["compare"]) == (
        "web", "2025-03-27", "2025-04-03", "Europe/Berlin", "previous_period")
    assert (body["previous_start"], body["previous_end"]) == ("2025-03-19", "2025-03-26")


def test_summary_year_over_year_and_none(app) -> None:
    yoy = get(app, f"/analytics/api/summary?{RANGE}&compare=year_over_year").get_json()
    assert (yoy["previous_start"], yoy["previous_end"]) == ("2024-03-27", "2024-04-03")
    plain = get(app, f"/analytics/api/summary?{RANGE}&compare=none").get_json()
    assert plain["previous"] is None and plain["change"] is None and plain["previous_start"] is None


def test_the_default_time_zone_is_the_setting(app) -> None:
    body = get(app, "/analytics/api/summary?start=2025-03-30&end=2025-03-30").get_json()
    assert body["tz"] == "Europe/Berlin"
    db = app.extensions["footfall"].db
    day = Period(date(2025, 3, 30), date(2025, 3, 30), resolve_timezone("Europe/Berlin"))
    assert body["total_visits"] == summarize(db, day.start, day.end)["total_visits"]


def test_timeseries_of_the_fall_back_day(app) -> None:
    body = get(app, "/analytics/api/timeseries?start=2025-10-26&end=2025-10-26&tz=Europe/Berlin&interval=hour"
                    "&metric=page_views&site=web").get_json()
    labels = [p["bucket"] for p in body["points"]]
    assert len(labels) == 25 and "2025-10-26T02:00:00+01:00" in labels and "2025-10-26T02:00:00+02:00" in labels
    assert (body["metric"], body["interval"], body["tz"], body["site"]) == ("page_views", "hour", "Europe/Berlin",
                                                                            "web")
    assert sum(p["value"] for p in body["points"]) > 0


def test_breakdown_pages_and_total(app, dataset) -> None:
    expected = reference_breakdown(dataset, MARCH.start, MARCH.end, "page", None, "country!=US")
    first = get(app, f"/analytics/api/breakdown?dimension=page&{RANGE}&filters=country!%3DUS&limit=4").get_json()
    second = get(app, f"/analytics/api/breakdown?dimension=page&{RANGE}&filters=country!%3DUS&limit=4&page=2")
    assert first["total"] == len(expected) > 4
    assert first["results"] + second.get_json()["results"] == expected[:8]
    assert (first["page"], first["limit"], first["dimension"]) == (1, 4, "page")


def test_export_is_a_csv_of_the_whole_breakdown(app) -> None:
    response = get(app, f"/analytics/api/export?dimension=country&site=web&{RANGE}")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert 'filename="footfall-web-country-2025-03-27-2025-04-03.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    db = app.extensions["footfall"].db
    whole = breakdown(db, MARCH.start, MARCH.end, "country", "web", limit=None)["results"]
    assert [r["country"] for r in rows] == [r["value"] for r in whole]
    assert [int(r["total_visits"]) for r in rows] == [r["total_visits"] for r in whole]


def test_sessions_by_cursor(app, dataset) -> None:
    ids, cursor = [], None
    while True:
        url = f"/analytics/api/sessions?site=blog&{RANGE}&limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = get(app, url).get_json()
        ids += [s["id"] for s in body["sessions"]]
        if not (cursor := body["next_cursor"]):
            break
    blog = [s for s in dataset.sessions if s["site"] == "blog" and MARCH.start <= s["started_at"] < MARCH.end]
    expected = sorted(blog, key=lambda s: (s["started_at"], s["_id"]))
    assert ids == [s["_id"] for s in expected] and len(ids) > 3


def test_sites(app) -> None:
    assert get(app, "/analytics/api/sites").get_json() == {"sites": list_sites(app.extensions["footfall"].db)}
    assert get(app, "/analytics/api/sites").get_json() == {"sites": ["blog", "web"]}


def test_a_filter_narrows_the_api_answer(app, dataset) -> None:
    body = get(app, f"/analytics/api/summary?{RANGE}&filters=page%3D%3D/pricing%3Bdevice!%3D(none)").get_json()
    assert body["total_visits"] == reference_summary(dataset, MARCH.start, MARCH.end, None,
                                                     "page==/pricing;device!=(none)")["total_visits"]


def test_breakdown_rows_match_plain_python(app, dataset) -> None:
    body = get(app, f"/analytics/api/breakdown?dimension=source&{RANGE}&limit=1000").get_json()
    assert body["results"] == reference_breakdown(dataset, MARCH.start, MARCH.end, "source")


@pytest.mark.parametrize(("query", "parameter", "named"), [
    pytest.param("summary?tz=Mars/Olympus", "tz", "Mars/Olympus", id="unknown tz"),
    pytest.param("summary?start=2025-02-30", "start", "2025-02-30", id="impossible date"),
    pytest.param("summary?start=2025-03-02&end=2025-03-01", "end", "before start", id="end before start"),
    pytest.param("summary?compare=last_week", "compare", "last_week", id="unknown compare"),
    pytest.param("summary?site=%24where", "site", "$where", id="bad site"),
    pytest.param("summary?filters=countri%3D%3DDE", "filters", "countri", id="unknown filter dimension"),
    pytest.param("summary?filters=country%3DDE", "filters", "country=DE", id="filter without operator"),
    pytest.param("summary?filters=page%3D%3D%5Cx", "filters", "bad escape", id="filter with a bad escape"),
    pytest.param("timeseries?metric=sessions", "metric", "sessions", id="unknown metric"),
    pytest.param("timeseries?interval=minute", "interval", "minute", id="unknown interval"),
    pytest.param("timeseries?interval=hour&start=2020-01-01&end=2024-12-31", "interval", "buckets",
                 id="too many buckets"),
    pytest.param("breakdown", "dimension", "required", id="missing dimension"),
    pytest.param("breakdown?dimension=planet", "dimension", "planet", id="unknown dimension"),
    pytest.param("breakdown?dimension=page&limit=0", "limit", "limit", id="limit 0"),
    pytest.param("breakdown?dimension=page&limit=1e3", "limit", "1e3", id="limit not an integer"),
    pytest.param("breakdown?dimension=page&page=-1", "page", "page", id="negative page"),
    pytest.param("export?dimension=page&format=xlsx", "format", "xlsx", id="unknown format"),
    pytest.param("sessions?cursor=garbage", "cursor", "garbage", id="forged cursor"),
    pytest.param("sessions?limit=5000", "limit", "5000", id="limit over 1000"),
    pytest.param("summary?filter=country%3D%3DDE", "filter", "unknown parameter", id="a typo is not ignored"),
    pytest.param("breakdown?dimension=", "dimension", "dimension must be one of", id="empty dimension"),
    pytest.param("summary?start=", "start", "leave it out", id="empty start"),
    pytest.param("summary?site=", "site", "site must be", id="empty site"),
])
def test_bad_parameters_are_a_400_naming_them(app, query: str, parameter: str, named: str) -> None:
    response = get(app, f"/analytics/api/{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter
    assert named in body["error"]


def test_openapi_is_public_and_describes_every_route(app) -> None:
    response = app.test_client().get("/analytics/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    # every JSON endpoint; the HTML pages (the dashboard, its login form and static files, the
    # tracker demo) are not an API
    html_pages = ("analytics_page.", "analytics_demo.")
    routes = {rule.rule for rule in app.url_map.iter_rules()
              if rule.rule.startswith(("/analytics/", "/api/")) and not rule.endpoint.startswith(html_pages)}
    assert routes == set(spec["paths"])
    assert spec["components"]["securitySchemes"]["adminToken"] == {"type": "http", "scheme": "bearer",
                                                                   "description": "FOOTFALL_ADMIN_TOKEN"}
