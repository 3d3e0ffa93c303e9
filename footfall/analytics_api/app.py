"""The Flask application factory: footfall's own API, wrapped by footfall's own middleware."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, jsonify
from pymongo.database import Database
from werkzeug.exceptions import HTTPException

from footfall.analytics_api.live import LiveState
from footfall.middleware.tracker import Tracker
from footfall.middleware.wsgi import FootfallMiddleware
from footfall.settings import Settings

__all__ = ["create_app", "FootfallState", "EXTENSION_KEY"]

EXTENSION_KEY = "footfall"
API_PREFIX = "/analytics/"
LIVE_API_PREFIX = "/api/"  # /api/stats, /api/visitor/register (footfall.analytics_api.live)


@dataclass(frozen=True)
class FootfallState:
    """What the blueprint needs, kept at ``app.extensions["footfall"]``."""

    settings: Settings
    tracker: Tracker
    db: Database
    middleware: FootfallMiddleware | None
    live: LiveState | None = None

    def close(self) -> None:
        """Stop the in-process drain (if any) and close every store client."""
        if self.middleware is not None:
            self.middleware.close()
        else:
            self.tracker.close()
        if self.live is not None:
            self.live.close()
        self.db.client.close()


def untracked_api(settings: Settings) -> Settings:
    """``settings`` with footfall's own API (``/analytics/``, ``/api/``) excluded from tracking:
    reading the dashboard is not a visit, and ``/api/visitor/register`` records its page view itself."""
    missing = tuple(prefix for prefix in (API_PREFIX, LIVE_API_PREFIX) if prefix not in settings.exclude_paths)
    return settings.with_overrides(exclude_paths=(*settings.exclude_paths, *missing)) if missing else settings


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], datetime] | None = None, track_requests: bool = True
) -> Flask:
    """Build footfall's Flask app: ``/analytics/stats``, ``/analytics/health``, the dashboard API
    ``/analytics/api/*``, ``/analytics/openapi.json``, the dashboard page ``/analytics/dashboard``,
    the admin endpoints, the tracker demo ``/analytics/demo``, the live numbers' ``/api/stats`` and
    ``/api/visitor/register`` and, through the middleware that wraps it, ``POST /analytics/track``
    and ``GET /analytics/footfall.js``.

    :param settings: footfall's settings; read from ``FOOTFALL_*`` variables when ``None``.
    :param clock: returns the current UTC datetime (tests pass a simulated clock).
    :param track_requests: wrap the app in :class:`FootfallMiddleware`; ``False`` when an outer
        :class:`~footfall.middleware.asgi.FootfallASGIMiddleware` tracks (footfall's ASGI app).
    :return: the Flask app (its ``wsgi_app`` is wrapped by :class:`FootfallMiddleware`).
    :raises ConfigurationError: no secret key, Redis URL or MongoDB URI, or a bad ``FOOTFALL_TIMEZONE``.
    """
    from footfall.analytics_api.admin import admin_blueprint
    from footfall.analytics_api.api import api_blueprint
    from footfall.analytics_api.dashboard import dashboard_blueprint
    from footfall.analytics_api.demo import demo_blueprint
    from footfall.analytics_api.live import LIVE_EXTENSION_KEY, live_blueprint
    from footfall.analytics_api.openapi import openapi_blueprint
    from footfall.analytics_api.routes import blueprint
    from footfall.errors import StoreUnavailable
    from footfall.live.store import LiveStore, live_redis_client
    from footfall.stores import build_tracker
    from footfall.stores.connect import mongo_database
    from footfall.stores.mongo_writer import ensure_indexes

    settings = untracked_api(settings or Settings.from_env())
    clock = clock or (lambda: datetime.now(UTC))
    tracker = build_tracker(settings)
    db = mongo_database(settings)
    try:
        ensure_indexes(db)
    except StoreUnavailable as exc:
        logging.getLogger("footfall.api").warning("MongoDB indexes not created yet: %s", exc)
    app = Flask("footfall")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(blueprint)
    app.register_blueprint(admin_blueprint)
    app.register_blueprint(demo_blueprint)
    app.register_blueprint(api_blueprint)
    app.register_blueprint(openapi_blueprint)
    app.register_blueprint(dashboard_blueprint)
    app.register_blueprint(live_blueprint)

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.description), exc.code

    middleware = None
    if track_requests:
        middleware = FootfallMiddleware(app.wsgi_app, tracker=tracker, clock=clock)
        app.wsgi_app = middleware  # type: ignore[method-assign]
    live = LiveState(LiveStore(live_redis_client(settings), db, settings), clock)
    app.extensions[LIVE_EXTENSION_KEY] = live
    app.extensions[EXTENSION_KEY] = FootfallState(settings, tracker, db, middleware, live)
    logging.getLogger("footfall").setLevel(logging.INFO)
    return app
