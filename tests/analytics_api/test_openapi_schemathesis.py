"""schemathesis against /analytics/openapi.json on the real app (its WSGI transport; real Redis and
MongoDB-wire server, the hand-built data set loaded): no server error, and every response conforms
to the document (status code, content type, headers, body schema). Valid requests (positive mode)
and requests that break the document (negative mode, which must also be refused with a 4xx) are
generated per operation with the admin token (or, when the case breaks the Authorization header on
purpose, with the header it generated, which must be refused); examples are bounded (25 per
operation and mode; ``FOOTFALL_SCHEMATHESIS_EXAMPLES`` raises it, with random seeds) so the run stays
well under a minute.

The schema is loaded from the same dict ``GET /analytics/openapi.json`` serves (a test in
test_dashboard_api.py checks the two are one), and each operation runs as its own test, since
schemathesis' lazy pytest fixture does not support pytest 9.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as builtin
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi import checks as openapi_checks

from footfall.analytics_api import create_app
from footfall.analytics_api.openapi import OPENAPI, STREAMS
from footfall.settings import Settings
from tests.dashboard_queries.data import make_dataset

AUTH = {"Authorization": "Bearer test-admin-token"}
CHECKS = [
    builtin.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.response_schema_conformance,
]
SCHEMA = schemathesis.openapi.from_dict(OPENAPI)
OPERATIONS = {op.label: op for op in (result.ok() for result in SCHEMA.get_all_operations())}
EXAMPLES = int(os.environ.get("FOOTFALL_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture
def footfall_app(settings: Settings):
    app = create_app(settings)
    make_dataset().insert(app.extensions["footfall"].db)
    yield app
    app.extensions["footfall"].close()


CASES = [pytest.param(label, mode, id=f"{label} {mode.value}") for label in sorted(OPERATIONS)
         if label not in STREAMS  # event streams: tested in tests/live/ on the ASGI app
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if not (mode is GenerationMode.NEGATIVE and label == "GET /analytics/openapi.json")]  # nothing to break


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_the_api_keeps_to_its_openapi_document(footfall_app, label: str, mode: GenerationMode) -> None:
    operation = OPERATIONS[label]
    strict = mode is GenerationMode.NEGATIVE and label.startswith("GET /analytics/api/")
    checks = CHECKS + ([openapi_checks.negative_data_rejection] if strict else [])

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              derandomize=os.environ.get("FOOTFALL_SCHEMATHESIS_EXAMPLES") is None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(mode))
    def exercise(case) -> None:
        header = case.meta.components.get(ParameterLocation.HEADER) if case.meta else None
        if header is not None and header.mode is GenerationMode.NEGATIVE:
            # the case breaks the Authorization header on purpose: send it as generated, expect it refused
            case.call_and_validate(checks=checks, app=footfall_app)
        else:
            case.call_and_validate(headers=AUTH, checks=checks, app=footfall_app)

    exercise()


def test_the_served_document_is_the_one_tested(footfall_app) -> None:
    assert footfall_app.test_client().get("/analytics/openapi.json").get_json() == OPENAPI
