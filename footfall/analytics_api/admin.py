"""The admin API: ``POST /analytics/admin/visitor-numbers/backfill`` (admin token)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from redis import RedisError

from footfall.analytics_api.routes import SITE_RE, require_admin, state
from footfall.errors import StoreUnavailable
from footfall.stores.visitor_numbers import backfill

__all__ = ["admin_blueprint"]

admin_blueprint = Blueprint("analytics_admin", __name__, url_prefix="/analytics/admin")


@admin_blueprint.post("/visitor-numbers/backfill")
@require_admin
def backfill_visitor_numbers() -> ResponseReturnValue:
    """Number the visitors that lack a number, in first-seen order (idempotent: a second call
    assigns nothing new). Optional ``site`` in the query or a JSON body; every site when absent.

    Answers ``{"assigned": {"<site>": n, ...}}``.

    :raise 400: a malformed ``site`` or body.
    :raise 401/403: see :func:`~footfall.analytics_api.routes.require_admin`.
    :raise 503: MongoDB did not answer.
    """
    body = request.get_json(silent=True) if request.content_length else None
    if request.content_length and not isinstance(body, dict):
        return jsonify(error="body must be a JSON object such as {\"site\": \"blog\"}"), 400
    site = request.args.get("site") or (body or {}).get("site")
    if site is not None and (not isinstance(site, str) or not SITE_RE.match(site)):
        return jsonify(error=f"site must be 1-100 letters, digits and . _ : -, got {str(site)[:40]!r}"), 400
    current = state()
    try:
        assigned = backfill(current.db, site, redis_client=current.tracker.sessions.client,
                            visitor_ttl=current.settings.visitor_ttl)
    except (StoreUnavailable, RedisError) as exc:
        return jsonify(error=str(exc)), 503
    return jsonify(assigned=assigned)
