"""footfall's HTTP API: the Flask app factory and the analytics blueprint."""

from footfall.analytics_api.app import create_app

__all__ = ["create_app"]
