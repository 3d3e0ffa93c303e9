"""A Starlette app tracked by footfall: the two lines are marked.

Run: ``FOOTFALL_SECRET_KEY=… FOOTFALL_REDIS_URL=… FOOTFALL_MONGODB_URI=… uvicorn examples.starlette_app:app``
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from footfall.middleware import FootfallASGIMiddleware  # footfall, line 1


async def home(request: Request) -> HTMLResponse:
    visit = request.state.footfall_visit  # also request.scope["footfall.visit"]
    who = f"visitor {visit.visitor_number}" if visit and visit.visitor_number else "a visitor"
    return HTMLResponse(f"<!doctype html><title>Home</title><h1>Hello, {who}</h1>")


app = FootfallASGIMiddleware(Starlette(routes=[Route("/", home)]))  # footfall, line 2
