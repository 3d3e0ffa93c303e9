"""The gunicorn entry point: ``gunicorn wsgi:app``.

Reads every ``FOOTFALL_*`` variable (``FOOTFALL_SECRET_KEY``, ``FOOTFALL_REDIS_URL`` and
``FOOTFALL_MONGODB_URI`` are required here; ``footfall serve`` starts embedded stores instead).
"""

from footfall.analytics_api import create_app

app = create_app()
