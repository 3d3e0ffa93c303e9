"""The apps the benchmark compares, as server factories, in two pairs.

WSGI, under gunicorn:

- ``benchmarks.apps:create_bare()``: a Flask app whose ``/`` answers 204, nothing else;
- ``benchmarks.apps:create_wrapped()``: the same app with ``app.wsgi_app = FootfallMiddleware(...)``,
  the README's two lines.

ASGI, under uvicorn (``--factory``):

- ``benchmarks.apps:create_bare_asgi``: a Starlette app whose ``/`` answers 204, nothing else;
- ``benchmarks.apps:create_wrapped_asgi``: the same app wrapped by ``FootfallASGIMiddleware``.

The wrapped apps read ``FOOTFALL_*`` variables (the runner sets the secret key and the URLs of its
throwaway stores). The in-process drain is off: the benchmark runs ``footfall drain`` on its own,
so the page measurements cost only the request path.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from flask import Flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from footfall.middleware import FootfallASGIMiddleware, FootfallMiddleware
from footfall.settings import Settings

__all__ = ["create_bare", "create_wrapped", "create_bare_asgi", "create_wrapped_asgi", "wrapped_settings"]


def create_bare() -> Flask:
    """A Flask app whose ``GET /`` answers ``204 No Content``."""
    app = Flask("footfall_bench")

    @app.get("/")
    def index() -> tuple[str, int]:
        return "", 204

    return app


def wrapped_settings() -> Settings:
    """footfall's settings for the wrapped apps: the environment's, with plain-http cookies (the
    benchmark talks to 127.0.0.1 over http) and no in-process drain.

    :raises ConfigurationError: a ``FOOTFALL_*`` variable is malformed.
    """
    return Settings.from_env().with_overrides(cookie_secure=False, inprocess_drain=False)


def create_wrapped() -> Flask:
    """The bare Flask app wrapped by footfall.

    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY`` or ``FOOTFALL_REDIS_URL``.
    """
    app = create_bare()
    app.wsgi_app = FootfallMiddleware(app.wsgi_app, wrapped_settings())  # type: ignore[method-assign]
    return app


async def _no_content(request: Request) -> Response:
    return Response(status_code=204)


def create_bare_asgi(on_shutdown: Callable[[], Awaitable[None]] | None = None) -> Starlette:
    """A Starlette app whose ``GET /`` answers ``204 No Content``.

    :param on_shutdown: awaited when the server shuts the app down (ASGI lifespan), if given.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if on_shutdown is not None:
            await on_shutdown()

    return Starlette(routes=[Route("/", _no_content)], lifespan=lifespan)


def create_wrapped_asgi() -> FootfallASGIMiddleware:
    """The bare Starlette app wrapped by ``FootfallASGIMiddleware``; its store clients are closed
    when the server shuts the app down.

    :raises ConfigurationError: no ``FOOTFALL_SECRET_KEY`` or ``FOOTFALL_REDIS_URL``.
    """

    async def close() -> None:
        await wrapped.aclose()

    wrapped = FootfallASGIMiddleware(create_bare_asgi(on_shutdown=close), wrapped_settings())
    return wrapped
