"""A Flask app tracked by footfall: the two lines are marked.

Run: ``FOOTFALL_SECRET_KEY=… FOOTFALL_REDIS_URL=… FOOTFALL_MONGODB_URI=… gunicorn examples.flask_app:app``
"""

from flask import Flask

from footfall.middleware import FootfallMiddleware, current_visit

app = Flask(__name__)
app.wsgi_app = FootfallMiddleware(app.wsgi_app)  # footfall, line 2 (line 1 is the import)


@app.get("/")
def home() -> str:
    visit = current_visit()
    who = f"visitor {visit.visitor_number}" if visit and visit.visitor_number else "a visitor"
    return f"<!doctype html><title>Home</title><h1>Hello, {who}</h1>"
