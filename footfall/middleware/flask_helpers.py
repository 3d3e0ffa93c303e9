"""Reading footfall's decision from inside a Flask view."""

from __future__ import annotations

from footfall.middleware.core import Visit

__all__ = ["current_visit"]


def current_visit() -> Visit | None:
    """The :class:`~footfall.middleware.core.Visit` of the current Flask request.

    It is ``environ["footfall.visit"]``: ``None`` for requests footfall does not track (excluded
    paths, crawlers) and when the session store is down; see the README. Call it inside a request.

    :raises RuntimeError: outside a Flask request context (Flask's own error).
    """
    from flask import request

    visit = request.environ.get("footfall.visit")
    return visit if isinstance(visit, Visit) else None
