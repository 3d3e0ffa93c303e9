"""The dashboard page: ``GET /analytics/dashboard`` and its login and logout.

The page is a server-rendered shell (``templates/dashboard/``) plus static JavaScript and CSS
(``static/``, with Chart.js vendored in ``static/vendor/``); the script reads the JSON API under
``/analytics/api/`` with the login cookie of :mod:`footfall.analytics_api.dashboard_auth`. The admin
token is typed once into a form posted to ``/analytics/dashboard/login``; it never appears in a URL.
Every response here carries a strict Content-Security-Policy (scripts, styles and requests from this
origin only, no inline code; ``connect-src 'self'`` covers the page's ``fetch`` calls and its
``EventSource``).
"""

from __future__ import annotations

import hmac
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from footfall.analytics_api import dashboard_auth
from footfall.analytics_api.live import DASHBOARD_STATS_PATH, LIVE_STREAMS_CONFIG
from footfall.analytics_api.routes import state

__all__ = ["dashboard_blueprint", "CARDS", "CONTENT_SECURITY_POLICY"]

dashboard_blueprint = Blueprint(
    "analytics_page", __name__, url_prefix="/analytics/dashboard",
    template_folder="templates", static_folder="static", static_url_path="/static",
)

API_PATH = "/analytics/api"  # the JSON API the page reads
LIVE_STREAM_PATH = "/analytics/live"  # the Server-Sent Events stream of footfall's ASGI app

# OWASP's strict policy: nothing inline, nothing from another origin, no framing, forms post here.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# The breakdown cards: (title, [(tab label, API dimension), ...]). The page's tabs are rendered from
# this list, and the dimensions are those of GET /analytics/api/breakdown (docs/data-model.md).
CARDS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Pages", [("Pages", "page"), ("Entry", "entry_page"), ("Exit", "exit_page"), ("Routes", "route")]),
    ("Sources", [("Sources", "source"), ("Referrers", "referrer"), ("UTM source", "utm_source"),
                 ("UTM medium", "utm_medium"), ("UTM campaign", "utm_campaign")]),
    ("Locations", [("Countries", "country")]),
    ("Devices", [("Devices", "device"), ("Browsers", "browser"), ("OS", "os")]),
    ("Events", [("Events", "event")]),
]

# The page's own query-string state, kept across the login redirect (never a token).
STATE_KEYS = ("site", "period", "start", "end", "compare", "filters", "metric")


def _state_query() -> str:
    """The request's dashboard state as a query string (known keys only, values capped)."""
    kept = [(key, request.args[key][:2000]) for key in STATE_KEYS if request.args.get(key)]
    return urlencode(kept)


def _page_url() -> str:
    query = _state_query()
    return url_for(".page") + (f"?{query}" if query else "")


def _same_origin() -> bool:
    """CSRF's second defence after ``SameSite=Strict``: a browser's POST names its origin.

    ``Origin`` (else ``Referer``) must carry this request's host (OWASP CSRF cheat sheet, "Verifying
    origin with standard headers"); a request with neither is not from a browser page and passes.
    The host is compared without the scheme so a TLS-terminating proxy does not lock everyone out.
    """
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


def _login_form(message: str | None, status: int) -> ResponseReturnValue:
    query = _state_query()
    action = url_for(".login") + (f"?{query}" if query else "")
    return render_template("dashboard/login.html", message=message, action=action), status


@dashboard_blueprint.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # same-origin: the login POST still names its Origin (no-referrer would send "null").
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "analytics_page.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@dashboard_blueprint.get("")
def page() -> ResponseReturnValue:
    """The dashboard for a browser with a valid login cookie, else the login form (200).

    The page's state (site, period, start, end, compare, filters, metric) lives in the query string,
    so a view can be shared as a link; the script reads it. Days are those of ``FOOTFALL_TIMEZONE``
    (not the viewer's zone), so everyone who opens a link sees the same numbers.

    The header's live strip reads ``/analytics/live/stats`` and, when the app runs inside footfall's
    ASGI app (``footfall serve``), follows the Server-Sent Events stream ``/analytics/live``; under a
    plain WSGI server, which answers the stream 501, the page polls instead of opening it.
    """
    settings = state().settings
    if not dashboard_auth.is_valid(settings, request.cookies.get(dashboard_auth.COOKIE_NAME)):
        return _login_form(None, 200)
    root = request.script_root
    # the live strip (static/live.js): stats at the dashboard's path; a stream only where one is served
    live_stream = root + LIVE_STREAM_PATH if current_app.config.get(LIVE_STREAMS_CONFIG) else ""
    return render_template("dashboard/page.html", cards=CARDS, api_base=root + API_PATH,
                           timezone=settings.timezone, live_stats=root + DASHBOARD_STATS_PATH, live_stream=live_stream)


@dashboard_blueprint.post("/login")
def login() -> ResponseReturnValue:
    """Check the form field ``token`` against ``FOOTFALL_ADMIN_TOKEN`` (constant time) and set the
    login cookie (:func:`~footfall.analytics_api.dashboard_auth.cookie_options`), then answer
    ``303 See Other`` to the dashboard with the same view state.

    :raise 401: a missing or wrong token (the form again, with a message).
    :raise 403: the POST came from another origin, or no ``FOOTFALL_ADMIN_TOKEN`` is configured.
    """
    settings = state().settings
    if not _same_origin():
        return _login_form("This form was posted from another site; open the dashboard and log in here.", 403)
    if not settings.admin_token:
        return _login_form("The dashboard is disabled: FOOTFALL_ADMIN_TOKEN is not configured.", 403)
    token = request.form.get("token", "").strip()
    if not token:
        return _login_form("Enter the admin token.", 401)
    if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        return _login_form("Wrong admin token.", 401)
    response = redirect(_page_url(), 303)
    response.set_cookie(dashboard_auth.COOKIE_NAME, dashboard_auth.issue(settings),
                        max_age=dashboard_auth.MAX_AGE, **dashboard_auth.cookie_options(settings))
    return response


@dashboard_blueprint.post("/logout")
def logout() -> ResponseReturnValue:
    """Delete the login cookie and answer ``303 See Other`` to the (login) page.

    :raise 403: the POST came from another origin (the cookie is left alone).
    """
    if not _same_origin():
        return _login_form("This form was posted from another site.", 403)
    response = redirect(url_for(".page"), 303)
    response.delete_cookie(dashboard_auth.COOKIE_NAME, **dashboard_auth.cookie_options(state().settings))
    return response
