"""The Flask application factory: footfall's own API, wrapped by footfall's own middleware."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask, jsonify
from pymongo.database import Database
from werkzeug.exceptions import HTTPException

from footfall.middleware.tracker import Tracker
from footfall.middleware.wsgi import FootfallMiddleware
from footfall.settings import Settings

__all__ = ["create_app", "FootfallState", "EXTENSION_KEY"]

EXTENSION_KEY = "footfall"
API_PREFIX = "/analytics/"


@dataclass(frozen=True)
class FootfallState:
    """What the blueprint needs, kept at ``app.extensions["footfall"]``."""

    settings: Settings
    tracker: Tracker
    db: Database
    middleware: FootfallMiddleware

    def close(self) -> None:
        """Stop the in-process drain (if any) and close every store client."""
        self.middleware.close()
        self.db.client.close()


def create_app(settings: Settings | None = None) -> Flask:
    """Build footfall's Flask app: ``/analytics/stats``, ``/analytics/health``, the dashboard API
    ``/analytics/api/*``, ``/analytics/openapi.json``, the dashboard page ``/analytics/dashboard``,
    the admin endpoints, the tracker demo ``/analytics/demo`` and, through the middleware that wraps
    it, ``POST /analytics/track`` and ``GET /analytics/footfall.js``.

    :param settings: footfall's settings; read from ``FOOTFALL_*`` variables when ``None``.
    :return: the Flask app (its ``wsgi_app`` is wrapped by :class:`FootfallMiddleware`).
    :raises ConfigurationError: no secret key, Redis URL or MongoDB URI.
    """
    from footfall.analytics_api.admin import admin_blueprint
    from footfall.analytics_api.api import api_blueprint
    from footfall.analytics_api.dashboard import dashboard_blueprint
    from footfall.analytics_api.demo import demo_blueprint
    from footfall.analytics_api.openapi import openapi_blueprint
    from footfall.analytics_api.routes import blueprint
    from footfall.errors import StoreUnavailable
    from footfall.stores import build_tracker
    from footfall.stores.connect import mongo_database
    from footfall.stores.mongo_writer import ensure_indexes

    settings = settings or Settings.from_env()
    if API_PREFIX not in settings.exclude_paths:  # reading the dashboard is not a visit
        settings = settings.with_overrides(exclude_paths=(*settings.exclude_paths, API_PREFIX))
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

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        return jsonify(error=exc.description), exc.code

    middleware = FootfallMiddleware(app.wsgi_app, tracker=tracker)
    app.wsgi_app = middleware  # type: ignore[method-assign]
    app.extensions[EXTENSION_KEY] = FootfallState(settings, tracker, db, middleware)
    logging.getLogger("footfall").setLevel(logging.INFO)
    return app
