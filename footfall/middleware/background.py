"""A drain thread inside the wrapped app's process (``FOOTFALL_INPROCESS_DRAIN=true``)."""

from __future__ import annotations

import logging
import os
import threading

from footfall.errors import ConfigurationError
from footfall.settings import Settings

__all__ = ["BackgroundDrain"]

log = logging.getLogger("footfall.drain")


class BackgroundDrain:
    """Runs a :class:`~footfall.drain.Drain` in a daemon thread, started lazily in each process.

    Lazily, because servers such as gunicorn fork workers after importing the app: clients and
    threads made before a fork do not survive it, so each worker starts its own on its first
    tracked request (and a forked child that inherits a started object starts again).

    If the process dies without :meth:`stop`, the entries its drain had read stay pending in Redis
    and another drain claims them after ``FOOTFALL_DRAIN_CLAIM_IDLE`` seconds: nothing is lost.

    :param settings: supplies the store URLs and the drain's tuning.
    :raises ConfigurationError: no ``FOOTFALL_REDIS_URL`` or ``FOOTFALL_MONGODB_URI``. Checked here,
        when the app is built, because the thread's clients are made by the first tracked request,
        where the error would fail every request of the wrapped app instead.
    """

    def __init__(self, settings: Settings) -> None:
        for name, value in (("FOOTFALL_REDIS_URL", settings.redis_url), ("FOOTFALL_MONGODB_URI", settings.mongodb_uri)):
            if not value:
                raise ConfigurationError(
                    f"{name} is not set: the in-process drain (FOOTFALL_INPROCESS_DRAIN=true, the default) "
                    "writes the event queue to MongoDB; set it, or set FOOTFALL_INPROCESS_DRAIN=false and "
                    "run `footfall drain`"
                )
        self.settings = settings
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._closers: list = []

    def ensure_started(self) -> None:
        """Start the thread if this process has none yet (cheap when it has)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            from footfall.drain import Drain
            from footfall.stores.connect import mongo_database, redis_client

            client = redis_client(self.settings, for_drain=True)
            db = mongo_database(self.settings)
            self._closers = [client.close, db.client.close]
            drain = Drain(client, db, batch_size=self.settings.drain_batch_size,
                          claim_idle=self.settings.drain_claim_idle)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=drain.run, args=(self._stop,), name="footfall-drain",
                                            daemon=True)
            self._thread.start()
            self._pid = os.getpid()
            log.info("started an in-process drain (%s)", drain.consumer)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to write what is queued and stop; wait up to ``timeout`` seconds."""
        thread, self._thread = self._thread, None
        if thread is None or self._pid != os.getpid():
            return
        self._stop.set()
        thread.join(timeout)
        for close in self._closers:
            close()
        self._pid = None
