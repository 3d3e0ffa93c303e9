"""Session-tracking middleware: the sans-I/O case decision and the WSGI adapter.

Two lines wrap a Flask app::

    from footfall.middleware import FootfallMiddleware
    app.wsgi_app = FootfallMiddleware(app.wsgi_app)

and two a Starlette or FastAPI app::

    from footfall.middleware import FootfallASGIMiddleware
    app = FootfallASGIMiddleware(app)   # or app.add_middleware(FootfallASGIMiddleware)
"""

from footfall.middleware.asgi import FootfallASGIMiddleware
from footfall.middleware.core import Case, Identity, SessionClaim, Visit
from footfall.middleware.flask_helpers import current_visit
from footfall.middleware.wsgi import ENVIRON_KEY, FootfallMiddleware

__all__ = [
    "Case",
    "ENVIRON_KEY",
    "FootfallASGIMiddleware",
    "FootfallMiddleware",
    "Identity",
    "SessionClaim",
    "Visit",
    "current_visit",
]
