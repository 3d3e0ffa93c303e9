"""A FastAPI app tracked by footfall: the two lines are marked.

Run: ``FOOTFALL_SECRET_KEY=… FOOTFALL_REDIS_URL=… FOOTFALL_MONGODB_URI=… uvicorn examples.fastapi_app:app``
"""

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from footfall.middleware import FootfallASGIMiddleware  # footfall, line 1

app = FastAPI()
app.add_middleware(FootfallASGIMiddleware)  # footfall, line 2


@app.get("/", response_class=HTMLResponse)
async def home(request: Request) -> str:
    visit = request.state.footfall_visit
    who = f"visitor {visit.visitor_number}" if visit and visit.visitor_number else "a visitor"
    return f"<!doctype html><title>Home</title><h1>Hello, {who}</h1>"
