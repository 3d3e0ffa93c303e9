"""The filters grammar: each operator, escapes, missing values, validation; and their effect on visits."""

from __future__ import annotations

from datetime import date

import pytest

from footfall.dashboard_queries import Period, format_filters, parse_filters, summarize
from footfall.dashboard_queries.filters import Clause
from footfall.errors import InvalidQuery
from tests.dashboard_queries.data import selected

ALL = Period(date(2025, 3, 1), date(2025, 10, 31))


@pytest.mark.parametrize(("text", "clauses"), [
    pytest.param("page==/pricing", [Clause("page", "==", ("/pricing",))], id="equals"),
    pytest.param("country==DE|AT", [Clause("country", "==", ("DE", "AT"))], id="any of"),
    pytest.param("device!=mobile", [Clause("device", "!=", ("mobile",))], id="not"),
    pytest.param("referrer~google", [Clause("referrer", "~", ("google",))], id="contains"),
    pytest.param("page==/pricing;country==DE", [Clause("page", "==", ("/pricing",)),
                                                Clause("country", "==", ("DE",))], id="and"),
    pytest.param("referrer==Direct / None", [Clause("referrer", "==", (None,))], id="Direct / None is missing"),
    pytest.param("country!=(none)", [Clause("country", "!=", (None,))], id="(none) is missing"),
    pytest.param("utm_campaign~(none)", [Clause("utm_campaign", "~", ("(none)",))], id="~ takes labels as text"),
    pytest.param(r"event==a\;b|c\|d|e\\f", [Clause("event", "==", ("a;b", "c|d", "e\\f"))], id="escapes"),
    pytest.param("page==/a==b~c", [Clause("page", "==", ("/a==b~c",))], id="operators inside a value"),
    pytest.param("country==DE;", [Clause("country", "==", ("DE",))], id="trailing semicolon"),
    pytest.param("", [], id="nothing"),
])
def test_grammar(text: str, clauses: list[Clause]) -> None:
    assert list(parse_filters(text)) == clauses
    assert parse_filters(format_filters(clauses)) == tuple(clauses)  # formatting round-trips


@pytest.mark.parametrize(("text", "named"), [
    pytest.param("countri==DE", "unknown dimension 'countri'", id="unknown dimension"),
    pytest.param("country=DE", "is not dimension==value", id="single equals"),
    pytest.param("country", "is not dimension==value", id="no operator"),
    pytest.param("==DE", "is not dimension==value", id="no dimension"),
    pytest.param("country==", "empty value", id="empty value"),
    pytest.param("country==DE|", "empty value", id="empty alternative"),
    pytest.param(r"page==/a\b", r"bad escape \b", id="unknown escape"),
    pytest.param("page==/a\\", "trailing", id="trailing backslash"),
    pytest.param("page==/a\x01", "control character", id="control character"),
    pytest.param(";".join(["country==DE"] * 21), "at most 20", id="too many clauses"),
    pytest.param("page==" + "a" * 1001, "at most 1000", id="too long"),
])
def test_bad_filters_name_the_problem(text: str, named: str) -> None:
    with pytest.raises(InvalidQuery) as info:
        parse_filters(text)
    assert info.value.parameter == "filters"
    assert named in info.value.message


@pytest.mark.parametrize("text", [
    "country==DE", "country!=DE", "country~e", "country==(none)", "country!=(none)", "referrer==Direct / None",
    "source==google.com", "source!=newsletter|Direct / None", "source~COM", "page==/docs", "page!=/docs",
    "page~BLOG", "route==/blog/<slug>", "route!=/blog/<slug>", "event==signup", "event!=signup",
    "event~PAUSE", "entry_page==/", "exit_page~pric", "utm_medium==email", "utm_campaign!=(none)",
    "device==tablet|mobile", "browser~safari", "os!=Windows",
])
def test_each_filter_selects_the_visits_plain_python_selects(seeded_db, dataset, text: str) -> None:
    visits, views = selected(dataset, ALL.start, ALL.end, None, text)
    result = summarize(seeded_db, ALL.start, ALL.end, filters=text)
    assert (result["total_visits"], result["page_views"]) == (len(visits), len(views))
    assert 0 < len(visits) < len(dataset.sessions)  # the filter narrows, and leaves something
