"""The ASGI entry point: ``uvicorn asgi:app``, or gunicorn with footfall's worker class
(``gunicorn -k footfall.live.worker.FootfallUvicornWorker asgi:app``).

Reads every ``FOOTFALL_*`` variable (``FOOTFALL_SECRET_KEY``, ``FOOTFALL_REDIS_URL`` and
``FOOTFALL_MONGODB_URI`` are required here; ``footfall serve`` starts embedded stores instead).
Serves all of ``wsgi.py``'s app plus the live streams ``/analytics/live`` and ``/analytics/ws``.
"""

from footfall.live.app import create_asgi_app

app = create_asgi_app()
