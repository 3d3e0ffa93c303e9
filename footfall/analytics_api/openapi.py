"""``GET /analytics/openapi.json``: the OpenAPI 3.0 description of every endpoint (public).

A hand-written dict (:data:`OPENAPI`), kept next to the views it describes; the test suite runs
schemathesis against it on the real app (tests/analytics_api/test_openapi_schemathesis.py), so a
response that strays from it fails the build.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from footfall.analytics_api.live import DASHBOARD_STATS_PATH
from footfall.analytics_api.routes import SITE_RE
from footfall.dashboard_queries.filters import DIMENSIONS
from footfall.dashboard_queries.summary import METRICS

__all__ = ["OPENAPI", "openapi_blueprint"]

openapi_blueprint = Blueprint("analytics_openapi", __name__)

INTEGER = {"type": "integer", "minimum": 0}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "parameter": {"type": "string"}}}
RATIO = {"type": "number", "minimum": 0, "maximum": 1}
METRIC_TYPES: dict[str, Any] = {
    "total_visits": INTEGER, "unique_visitors": INTEGER, "page_views": INTEGER,
    "views_per_visit": {"type": "number", "minimum": 0}, "bounce_rate": RATIO,
    "visit_duration": {**INTEGER, "description": "mean seconds, a bounce counting 0"},
    "new_visits": INTEGER, "returning_visits": INTEGER,
}
METRICS_SCHEMA = {"type": "object", "required": list(METRICS), "properties": METRIC_TYPES}
CHANGE_SCHEMA = {"type": "object", "nullable": True, "required": list(METRICS), "description": "percent change",
                 "properties": {k: {"type": "number", "nullable": True} for k in METRICS}}
DATE = {"type": "string", "format": "date"}
RANGE_PROPERTIES: dict[str, Any] = {"site": {"type": "string", "nullable": True}, "start": DATE, "end": DATE,
                                    "tz": {"type": "string"}}
SOURCE = {"type": "string", "enum": ["rollups", "raw"],
          "description": "what answered: the rollups, or an aggregation of the raw collections (same numbers)"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {400: "a bad parameter (the message and `parameter` name it)",
             401: "no bearer token", 403: "a wrong token, or FOOTFALL_ADMIN_TOKEN not configured",
             503: "a store did not answer"}
    out = {str(s): _json({"$ref": "#/components/schemas/Error"}, texts[s]) for s in statuses}
    if 401 in statuses:
        out["401"]["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return out


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


SITE = _query("site", {"type": "string", "pattern": SITE_RE.pattern}, "one site (default: every site)")
SCOPE = [
    SITE,
    _query("start", DATE, "first local day, inclusive (default today)"),
    _query("end", DATE, "last local day, inclusive (default today, or start if later)"),
    _query("tz", {"type": "string"}, "IANA time zone of the days and buckets (default FOOTFALL_TIMEZONE)"),
    _query("filters", {"type": "string"}, "clauses `dimension==a|b`, `dimension!=a`, `dimension~text` joined by "
                                          "`;`; `\\` escapes `;` `|` `\\`; `(none)` / `Direct / None` = no value"),
]
DIMENSION = _query("dimension", {"type": "string", "enum": list(DIMENSIONS)}, "what to break down by", required=True)
LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "rows per page")
ROW = {"type": "object", "required": ["value", "total_visits", "unique_visitors", "page_views", "bounce_rate",
                                      "visit_duration"],
       "properties": {"value": {"type": "string"}, **{k: METRIC_TYPES[k] for k in (
           "total_visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration")}, "events": INTEGER}}
NULLABLE_STRING = {"type": "string", "nullable": True}
SESSION = {"type": "object", "required": ["id", "site", "visitor_id", "started_at", "duration"], "properties": {
    "id": {"type": "string"}, "site": NULLABLE_STRING, "visitor_id": NULLABLE_STRING,
    "visitor_number": {"type": "integer", "nullable": True}, "started_at": NULLABLE_STRING,
    "last_seen_at": NULLABLE_STRING, "duration": {"type": "integer", "description": "seconds"},
    "page_views": {"type": "integer", "nullable": True}, "events": {"type": "integer", "nullable": True},
    **{k: NULLABLE_STRING for k in ("entry_path", "exit_path", "referrer", "referrer_host", "utm_source",
                                    "utm_medium", "utm_campaign", "country", "city", "device", "browser", "os",
                                    "user_agent")},
    **{k: {"type": "array", "nullable": True, "items": {"type": "string", "nullable": True}}
       for k in ("paths", "routes", "event_names")},
}}
SECURED = _errors(400, 401, 403, 503)


def _get(summary: str, parameters: list[dict[str, Any]], ok: dict[str, Any], *, tag: str = "dashboard") -> dict:
    return {"get": {"summary": summary, "tags": [tag], "parameters": parameters, "responses": {"200": ok, **SECURED}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "footfall analytics API", "version": "1.0.0",
             "description": "Visits, unique visitors and page views of the sites footfall tracks. Every endpoint "
                            "but this document needs `Authorization: Bearer <FOOTFALL_ADMIN_TOKEN>`."},
    "security": [{"adminToken": []}],
    "components": {
        "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                           "description": "FOOTFALL_ADMIN_TOKEN"}},
        "schemas": {"Error": ERROR, "Metrics": METRICS_SCHEMA, "BreakdownRow": ROW, "Session": SESSION},
    },
    "paths": {
        "/analytics/api/summary": _get("Summary, compared with an earlier period", [
            *SCOPE, _query("compare", {"type": "string", "enum": ["previous_period", "year_over_year", "none"]},
                           "the period to compare with (default previous_period)")],
            _json({"allOf": [{"$ref": "#/components/schemas/Metrics"}, {"type": "object", "properties": {
                "previous": {"allOf": [{"$ref": "#/components/schemas/Metrics"}], "nullable": True},
                "change": CHANGE_SCHEMA, **RANGE_PROPERTIES, "source": SOURCE,
                "compare": {"type": "string", "enum": ["previous_period", "year_over_year", "none"]},
                "previous_start": {**DATE, "nullable": True}, "previous_end": {**DATE, "nullable": True}}}]})),
        "/analytics/api/timeseries": _get("One metric per time bucket, every bucket present", [
            *SCOPE,
            _query("metric", {"type": "string", "enum": ["visits", "unique_visitors", "page_views", "bounce_rate",
                                                         "visit_duration"]}, "default visits"),
            _query("interval", {"type": "string", "enum": ["hour", "day", "week", "month"]}, "default day")],
            _json({"type": "object", "required": ["source", "metric", "interval", "tz", "points"], "properties": {
                "metric": {"type": "string"}, "interval": {"type": "string"}, **RANGE_PROPERTIES, "source": SOURCE,
                "points": {"type": "array", "items": {"type": "object", "required": ["bucket", "value"], "properties": {
                    "bucket": {"type": "string"}, "value": {"type": "number", "minimum": 0}}}}}})),
        "/analytics/api/breakdown": _get("Metrics per value of a dimension, paginated", [
            *SCOPE, DIMENSION, LIMIT, _query("page", {"type": "integer", "minimum": 1, "maximum": 1000000}, "1-based")],
            _json({"type": "object", "required": ["source", "dimension", "results", "page", "total"], "properties": {
                "source": SOURCE,
                "dimension": {"type": "string"}, "results": {"type": "array",
                                                             "items": {"$ref": "#/components/schemas/BreakdownRow"}},
                "page": {"type": "integer"}, "limit": {"type": "integer", "nullable": True}, "total": INTEGER,
                **RANGE_PROPERTIES}})),
        "/analytics/api/export": _get("Every row of a breakdown as CSV", [
            *SCOPE, DIMENSION, _query("format", {"type": "string", "enum": ["csv"]}, "default csv")],
            {"description": "CSV with a header row", "content": {"text/csv": {"schema": {"type": "string"}}}}),
        "/analytics/api/sessions": _get("Raw sessions, oldest first, cursor-paginated", [
            *SCOPE, LIMIT, _query("cursor", {"type": "string"}, "next_cursor of the previous page")],
            _json({"type": "object", "required": ["sessions", "next_cursor"], "properties": {
                "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
                "next_cursor": NULLABLE_STRING, **RANGE_PROPERTIES}})),
        "/analytics/api/sites": _get("The sites with data", [], _json({
            "type": "object", "required": ["sites"], "properties": {"sites": {"type": "array",
                                                                             "items": {"type": "string"}}}})),
        "/analytics/stats": _get("Total visits, unique visitors and page views for UTC days", [
            SITE, _query("start", DATE, "first UTC day (default today)"),
            _query("end", DATE, "last UTC day, inclusive (default today)")],
            _json({"type": "object", "required": ["total_visits", "unique_visitors", "page_views", "start", "end",
                                                  "site"], "properties": {
                k: METRIC_TYPES[k] for k in ("total_visits", "unique_visitors", "page_views")} | {
                "start": DATE, "end": DATE, "site": NULLABLE_STRING}}), tag="stats"),
        "/analytics/health": {"get": {"summary": "Store reachability, backlog and event counts", "tags": ["stats"],
                                      "responses": {"200": _json({"$ref": "#/components/schemas/Health"}),
                                                    "503": _json({"$ref": "#/components/schemas/Health"},
                                                                 "a store did not answer"),
                                                    **_errors(401, 403)}}},
        "/analytics/admin/visitor-numbers/backfill": {"post": {
            "summary": "Number the visitors that lack a number (idempotent)", "tags": ["admin"],
            "parameters": [SITE],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"site": {"type": "string", "pattern": SITE_RE.pattern}}}}}},
            "responses": {"200": _json({"type": "object", "required": ["assigned"], "properties": {
                "assigned": {"type": "object", "additionalProperties": INTEGER}}}), **SECURED}}},
        "/analytics/openapi.json": {"get": {"summary": "This document", "tags": ["meta"], "security": [],
                                            "responses": {"200": _json({"type": "object"})}}},
    },
}
OPENAPI["components"]["schemas"]["Health"] = {
    "type": "object", "required": ["redis", "mongodb", "backlog", "events", "visitor_numbers"], "properties": {
        "redis": {"type": "boolean"}, "mongodb": {"type": "boolean"},
        "backlog": {"type": "object", "nullable": True, "properties": {
            "length": INTEGER, "lag_seconds": {"type": "number", "minimum": 0}}},
        "events": {"type": "object", "properties": {k: INTEGER for k in (
            "written", "failed", "dropped", "dropped_unreported")}},
        "visitor_numbers": {"type": "object", "properties": {
            "assigned": INTEGER, "failed": INTEGER, "success_rate": {**RATIO, "nullable": True}}}}}


@openapi_blueprint.get("/analytics/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI document (public: it describes, it does not reveal data)."""
    return jsonify(OPENAPI)


# The live numbers (footfall.analytics_api.live, footfall.live): the seed's camelCase shape.
LIVE_STATS = {"type": "object", "required": [
    "totalVisits", "todayVisits", "uniqueVisitors", "todayUniqueVisitors", "activeUsers", "pageViews", "locations",
    "lastUpdated"], "properties": {
    **{k: INTEGER for k in ("totalVisits", "todayVisits", "uniqueVisitors", "todayUniqueVisitors", "activeUsers",
                            "pageViews")},
    "locations": {"type": "object", "description": 'keys "<country name>, <CC>"', "additionalProperties": {
        "type": "object", "required": ["count"], "properties": {"count": INTEGER}}},
    "lastUpdated": {"type": "string", "format": "date-time"}}}
LIVE_SITE = _query("site", {"type": "string", "pattern": SITE_RE.pattern}, "the site (default FOOTFALL_DEFAULT_SITE)")
LIVE_READ: dict[str, Any] = {
    "description": "public when FOOTFALL_PUBLIC_STATS=true, else the admin token (bearer or dashboard cookie)",
    "security": [{"adminToken": []}, {}]}
STREAM_ONLY_UNDER_ASGI = _json({"$ref": "#/components/schemas/Error"},
                               "served by a plain WSGI server: the streams need footfall's ASGI app (footfall serve)")
LIVE_PATHS: dict[str, dict[str, dict[str, Any]]] = {  # typed: mypy checks each operation as dict[str, Any]
    "/api/stats": {"get": {"summary": "A site's live numbers, from counters (O(1) in stored sessions)",
                           "tags": ["live"], **LIVE_READ, "parameters": [LIVE_SITE],
                           "responses": {"200": _json(LIVE_STATS), **_errors(400, 401, 403, 503)}}},
    # the same endpoint where the dashboard's login cookie (Path=/analytics) reaches it
    DASHBOARD_STATS_PATH: {"get": {"summary": "GET /api/stats, under /analytics for the dashboard's login cookie",
                                   "tags": ["live"], **LIVE_READ, "parameters": [LIVE_SITE],
                                   "responses": {"200": _json(LIVE_STATS), **_errors(400, 401, 403, 503)}}},
    "/api/visitor/register": {"post": {
        "summary": "Record a visit's page view like /analytics/track and answer the live numbers", "tags": ["live"],
        "security": [{}], "parameters": [LIVE_SITE],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["timestamp"], "properties": {
                "visitorId": {"type": "string"}, "timestamp": {"type": "number", "minimum": 0},
                "userAgent": {"type": "string"}, "referrer": {"type": "string"}}}}}},
        "responses": {"200": _json({"type": "object", "required": ["success", "stats"], "properties": {
            "success": {"type": "boolean"}, "ignored": {"type": "string"},
            "stats": {**LIVE_STATS, "nullable": True}}}),
            "413": _json({"$ref": "#/components/schemas/Error"}, "a body over 16 KiB"),
            **_errors(400, 503)}}},
    "/analytics/live": {"get": {
        "summary": "Server-Sent Events: `visitor_update` events, data {type, stats}, at most one a second per site, "
                   "with `id:` lines (resume with Last-Event-ID) and a heartbeat comment every 15 s",
        "tags": ["live"], **LIVE_READ, "parameters": [LIVE_SITE],
        "responses": {"200": {"description": "the event stream", "content": {"text/event-stream": {
            "schema": {"type": "string"}}}}, "501": STREAM_ONLY_UNDER_ASGI, **_errors(400, 401, 403)}}},
    "/analytics/ws": {"get": {
        "summary": "WebSocket: the same {type: visitor_update, stats} messages as /analytics/live",
        "tags": ["live"], **LIVE_READ, "parameters": [LIVE_SITE],
        "responses": {"101": {"description": "switching to the WebSocket protocol"},
                      "501": STREAM_ONLY_UNDER_ASGI, **_errors(400, 401, 403)}}},
}
OPENAPI["paths"].update(LIVE_PATHS)
STREAMS = ("GET /analytics/live", "GET /analytics/ws")
"""Operations a WSGI test client cannot exercise (they answer 501 outside the ASGI app)."""
