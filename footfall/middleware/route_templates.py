"""The route template a page path matches in the wrapped app: ``/users/<int:id>`` rather than
``/users/42``.

Issue 6: "``route`` (the matched route template, e.g. ``/users/<id>``, captured by the middleware
from Flask's ``url_rule`` / Starlette's route: no anchor can group by route)". The middleware runs
before the app routes the request, and a page view posted to ``/analytics/track`` names a page, not
the request's own path, so the template is found by matching the page's path against the app's own
routing table: Werkzeug's ``Map`` for Flask (the same matching that sets ``request.url_rule``), and
the route list of a Starlette or FastAPI app (each route's ``path_regex``, descending into
``Mount``s). Templates keep the framework's syntax: ``/users/<int:id>`` (Flask),
``/users/{id}`` (Starlette).

Matching is cached per path (LRU); apps whose routes change at run time should pass their own
resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

__all__ = ["RouteResolver", "route_resolver_for", "flask_resolver", "starlette_resolver"]

RouteResolver = Callable[[str], "str | None"]
"""``resolver(path) -> template or None``: the route a ``GET`` of ``path`` would match."""

CACHE_SIZE = 4096


def flask_resolver(app: Any, cache_size: int = CACHE_SIZE) -> RouteResolver:
    """A resolver over a Flask app's ``url_map`` (Werkzeug routing).

    :param app: the Flask app (or anything with a Werkzeug ``url_map``).
    :return: ``resolver(path)``: the matching rule's template (``rule.rule``), or ``None`` when no
        rule matches a ``GET`` (404, 405, or a redirect such as a missing trailing slash).
    """
    from werkzeug.exceptions import HTTPException
    from werkzeug.routing import RequestRedirect

    url_map = app.url_map

    @lru_cache(maxsize=cache_size)
    def resolve(path: str) -> str | None:
        try:
            rule, _ = url_map.bind("localhost").match(path, method="GET", return_rule=True)
        except (HTTPException, RequestRedirect):
            return None
        return str(rule.rule)

    return resolve


def _starlette_match(routes: list[Any], path: str, prefix: str) -> str | None:
    for route in routes:
        regex = getattr(route, "path_regex", None)
        if regex is None:
            continue
        match = regex.match(path)
        if match is None:
            continue
        sub_routes = getattr(route, "routes", None)
        if sub_routes is not None and "path" in match.groupdict():  # a Mount: look inside it
            inner = _starlette_match(list(sub_routes), "/" + match.group("path"), prefix + route.path)
            if inner is not None:
                return inner
            continue
        if getattr(route, "methods", None) and "GET" not in route.methods:
            continue
        return prefix + route.path
    return None


def starlette_resolver(app: Any, cache_size: int = CACHE_SIZE) -> RouteResolver:
    """A resolver over a Starlette (or FastAPI) app's routes.

    :param app: the app, or its ``Router``.
    :return: ``resolver(path)``: the matching route's template, with the prefixes of the
        ``Mount``s it sits in (``/api/items/{item_id}``), or ``None``.
    """
    router = getattr(app, "router", app)

    @lru_cache(maxsize=cache_size)
    def resolve(path: str) -> str | None:
        return _starlette_match(list(router.routes), path, "")

    return resolve


def route_resolver_for(app: Any) -> RouteResolver | None:
    """The resolver for a wrapped app, found by looking at it: a Flask app (or its bound
    ``wsgi_app`` method, as in ``app.wsgi_app = FootfallMiddleware(app.wsgi_app)``), or a
    Starlette/FastAPI app; ``None`` for anything else (the ``route`` of its page views stays null).
    """
    owner = getattr(app, "__self__", app)
    if hasattr(owner, "url_map") and hasattr(owner.url_map, "bind"):
        return flask_resolver(owner)
    router = getattr(owner, "router", None)
    if router is not None and hasattr(router, "routes"):
        return starlette_resolver(owner)
    return None
