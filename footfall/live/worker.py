"""The gunicorn worker class of ``footfall serve``: uvicorn's, with a short graceful shutdown.

``gunicorn -k footfall.live.worker.FootfallUvicornWorker 'asgi:app'`` runs footfall's ASGI app
(:mod:`footfall.live.app`) in gunicorn's process model (a master that restarts workers, graceful
SIGTERM) with an asyncio event loop per worker (the ``uvicorn-worker`` package).

On shutdown uvicorn stops accepting, then waits for open connections to finish. A live stream never
finishes by itself, so after ``GRACEFUL_SHUTDOWN`` seconds the remaining ones are cancelled (the
browsers reconnect, to another worker or to the restarted server); tracking requests take
milliseconds and are long done by then.
"""

from __future__ import annotations

from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker

__all__ = ["FootfallUvicornWorker", "GRACEFUL_SHUTDOWN"]

GRACEFUL_SHUTDOWN = 3  # seconds open streams get before they are cancelled at shutdown


class FootfallUvicornWorker(UvicornWorker):
    """uvicorn's gunicorn worker (the best loop and HTTP parser installed, lifespan on) that cancels
    open streams ``GRACEFUL_SHUTDOWN`` seconds into a shutdown."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": "auto", "lifespan": "on",
                                               "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN}
