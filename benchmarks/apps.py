"""The two apps the benchmark compares, as gunicorn factories.

- ``benchmarks.apps:create_bare()``: a Flask app whose ``/`` answers 204, nothing else;
- ``benchmarks.apps:create_wrapped()``: the same app with ``app.wsgi_app = FootfallMiddleware(...)``,
  the README's two lines, reading ``FOOTFALL_*`` variables (the runner sets the secret key and the
  URLs of its throwaway stores). The in-process drain is off: the benchmark runs ``footfall drain``
  on its own, so the page measurements cost only the request path.
"""

from __future__ import annotations

from flask import Flask

from footfall.middleware import FootfallMiddleware
from footfall.settings import Settings

__all__ = ["create_bare", "create_wrapped", "wrapped_settings"]


def create_bare() -> Flask:
    """A Flask app whose ``GET /`` answers ``204 No Content``."""
    app = Flask("footfall_bench")

    @app.get("/")
    def index() -> tuple[str, int]:
        return "", 204

    return app


def wrapped_settings() -> Settings:
    """footfall's settings for the wrapped app: the environment's, with plain-http cookies (the
    benchmark talks to 127.0.0.1 over http) and no in-process drain.

    :raises ConfigurationError: a ``FOOTFALL_*`` variable is malformed.
    """
    return Settings.from_env().with_overrides(cookie_secure=False, inprocess_drain=False)


def create_wrapped() -> Flask:
    """The bare app wrapped by footfall.

    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY`` or ``FOOTFALL_REDIS_URL``.
    """
    app = create_bare()
    app.wsgi_app = FootfallMiddleware(app.wsgi_app, wrapped_settings())  # type: ignore[method-assign]
    return app
