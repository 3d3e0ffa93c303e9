"""Breakdowns of every dimension, pagination, CSV export and DataFrames, against plain Python."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from footfall.dashboard_queries import DIMENSIONS, Period, as_dataframe, breakdown, export_breakdown
from footfall.dashboard_queries.periods import resolve_timezone
from footfall.errors import InvalidQuery
from tests.dashboard_queries.data import reference_breakdown

MARCH = Period(date(2025, 3, 27), date(2025, 4, 3), resolve_timezone("Europe/Berlin"))
ALL = Period(date(2025, 3, 1), date(2025, 10, 31), resolve_timezone("UTC"))


@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_every_dimension_matches_plain_python(seeded_db, dataset, dimension: str) -> None:
    expected = reference_breakdown(dataset, MARCH.start, MARCH.end, dimension, "web")
    assert len(expected) >= 2  # a breakdown with something to sort
    for rollups, source in ((True, "rollups"), (False, "raw")):
        result = breakdown(seeded_db, MARCH.start, MARCH.end, dimension, "web", limit=1000, rollups=rollups)
        assert result["source"] == source
        assert result["results"] == expected
        assert (result["total"], result["page"], result["dimension"]) == (len(expected), 1, dimension)


@pytest.mark.parametrize("dimension", list(DIMENSIONS))
def test_every_page_of_a_rollup_breakdown_is_the_raw_page(seeded_db, dimension: str) -> None:
    for page in (1, 2, 3):
        found = breakdown(seeded_db, ALL.start, ALL.end, dimension, "web", limit=2, page=page)
        raw = breakdown(seeded_db, ALL.start, ALL.end, dimension, "web", limit=2, page=page, rollups=False)
        assert (found.pop("source"), raw.pop("source")) == ("rollups", "raw")
        assert found == raw


@pytest.mark.parametrize(("dimension", "filters"), [
    pytest.param("page", "page==/pricing|/docs", id="page filtered on itself"),
    pytest.param("page", "page!=/pricing", id="page negated on itself"),
    pytest.param("page", "country==DE", id="page under a visit filter"),
    pytest.param("route", "route~blog", id="route substring"),
    pytest.param("country", "page==/docs", id="country of visits that viewed a page"),
    pytest.param("referrer", "referrer!=Direct / None", id="referrer without direct"),
    pytest.param("source", "utm_source==(none)", id="source without utm"),
    pytest.param("event", "event==play \\| pause", id="escaped event name"),
    pytest.param("event", "device==desktop", id="events under a visit filter"),
    pytest.param("entry_page", "exit_page==/|/pricing;browser!=(none)", id="two clauses"),
])
def test_filtered_breakdowns(seeded_db, dataset, dimension: str, filters: str) -> None:
    expected = reference_breakdown(dataset, ALL.start, ALL.end, dimension, None, filters)
    assert expected
    assert breakdown(seeded_db, ALL.start, ALL.end, dimension, filters=filters, limit=1000)["results"] == expected


def test_page_breakdown_sorts_by_page_views_and_counts_visitors_per_page(seeded_db, dataset) -> None:
    rows = breakdown(seeded_db, ALL.start, ALL.end, "page", limit=1000)["results"]
    assert [r["page_views"] for r in rows] == sorted((r["page_views"] for r in rows), reverse=True)
    pricing = next(r for r in rows if r["value"] == "/pricing")
    viewers = {v["visitor_id"] for v in dataset.page_views if v["path"] == "/pricing"}
    assert pricing["unique_visitors"] == len(viewers)


def test_event_rows_count_the_events(seeded_db, dataset) -> None:
    rows = {r["value"]: r for r in breakdown(seeded_db, ALL.start, ALL.end, "event", limit=1000)["results"]}
    assert set(rows) == {"signup", "download", "play | pause"}
    assert rows["signup"]["events"] == sum(1 for e in dataset.custom_events if e["name"] == "signup")


def test_pages_of_a_breakdown_tile_the_whole(seeded_db) -> None:
    whole = breakdown(seeded_db, ALL.start, ALL.end, "country", limit=1000)
    assert whole["total"] == len(whole["results"]) == 4  # DE, US, FR, (none)
    pages = [breakdown(seeded_db, ALL.start, ALL.end, "country", limit=3, page=n) for n in (1, 2, 3)]
    assert [len(p["results"]) for p in pages] == [3, 1, 0]
    assert all(p["total"] == 4 and p["limit"] == 3 for p in pages)
    assert [r for p in pages for r in p["results"]] == whole["results"]


@pytest.mark.parametrize(("kwargs", "parameter"), [
    pytest.param({"limit": 0}, "limit", id="limit 0"),
    pytest.param({"limit": 1001}, "limit", id="limit over 1000"),
    pytest.param({"page": 0}, "page", id="page 0"),
    pytest.param({"dimension": "city"}, "dimension", id="unknown dimension"),
    pytest.param({"filters": "country=DE"}, "filters", id="bad filter"),
])
def test_bad_breakdown_arguments(seeded_db, kwargs: dict, parameter: str) -> None:
    arguments = {"dimension": "country", **kwargs}
    with pytest.raises(InvalidQuery) as info:
        breakdown(seeded_db, ALL.start, ALL.end, arguments.pop("dimension"), **arguments)
    assert info.value.parameter == parameter


def test_csv_export_has_every_row(seeded_db, dataset) -> None:
    text = export_breakdown(seeded_db, ALL.start, ALL.end, "referrer", "web")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["referrer", "total_visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration"]
    expected = reference_breakdown(dataset, ALL.start, ALL.end, "referrer", "web")
    assert rows[1:] == [[str(r[k]) for k in ("value", "total_visits", "unique_visitors", "page_views", "bounce_rate",
                                             "visit_duration")] for r in expected]
    assert "Direct / None" in text
    assert text.endswith("\r\n")


def test_csv_quotes_what_needs_quoting(seeded_db) -> None:
    text = export_breakdown(seeded_db, ALL.start, ALL.end, "event")
    assert text.splitlines()[0] == "event,total_visits,unique_visitors,page_views,bounce_rate,visit_duration,events"
    assert any(row[0] == "play | pause" for row in csv.reader(io.StringIO(text)))


def test_dataframes_of_each_result(seeded_db) -> None:
    pytest.importorskip("pandas")
    from footfall.dashboard_queries import list_sessions, summarize, timeseries

    frame = as_dataframe(breakdown(seeded_db, ALL.start, ALL.end, "device", limit=1000))
    assert list(frame.columns) == ["value", "total_visits", "unique_visitors", "page_views", "bounce_rate",
                                   "visit_duration"]
    assert frame["total_visits"].sum() == summarize(seeded_db, ALL.start, ALL.end)["total_visits"]
    series = as_dataframe(timeseries(seeded_db, MARCH, "page_views", "day", "web"))
    assert list(series.columns) == ["bucket", "page_views"] and len(series) == MARCH.days
    summary = as_dataframe(summarize(seeded_db, MARCH.start, MARCH.end, "web", previous=(ALL.start, MARCH.start)))
    assert list(summary.index) == ["current", "previous", "change"]
    sessions = as_dataframe(list_sessions(seeded_db, MARCH.start, MARCH.end, "web", limit=5))
    assert len(sessions) == 5 and "visitor_id" in sessions.columns
    with pytest.raises(ValueError, match="not a footfall query result"):
        as_dataframe({"something": 1})
