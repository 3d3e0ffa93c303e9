"""The tracker demo: ``GET /analytics/demo`` and its client-side routes, a page that loads
``/analytics/footfall.js`` and changes routes with ``history.pushState`` as a single-page app does."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from footfall.analytics_api.routes import state

__all__ = ["demo_blueprint", "DEMO_PAGES", "DEMO_SITE"]

demo_blueprint = Blueprint("analytics_demo", __name__, url_prefix="/analytics/demo", template_folder="templates")

DEMO_SITE = "demo"  # the demo's events are recorded under this site (the script's data-site)

# route (under /analytics/demo) -> (title, what the page says)
DEMO_PAGES: dict[str, tuple[str, str]] = {
    "": ("Home", "Welcome. Follow the links above: each changes the route without reloading the page, "
                 "and footfall.js records a page view for it."),
    "pricing": ("Pricing", "Free for one site; Pro for as many as you like. The button below sends a custom "
                           "event, signup, with the property plan = pro."),
    "about": ("About", "footfall counts visits and visitors with two signed cookies, Redis and MongoDB."),
    "docs": ("Docs", "Add <script defer src=\"/analytics/footfall.js\"></script> to your pages; call "
                     "footfall.track(name, props) for custom events."),
}


@demo_blueprint.get("", defaults={"page": ""})
@demo_blueprint.get("/<page>")
def demo(page: str) -> str:
    """The demo page, showing ``page`` (Home for ``/analytics/demo``), so that a reload on a
    client-side route shows that route. No admin token: the page reads nothing back.

    :raise 404: a page the demo does not have.
    """
    if page not in DEMO_PAGES:
        abort(404, description=f"the demo has no page {page!r}; it has {', '.join(p or 'home' for p in DEMO_PAGES)}")
    return render_template("demo/page.html", pages=DEMO_PAGES, current=page, site=DEMO_SITE,
                           script_path=state().settings.script_path)
