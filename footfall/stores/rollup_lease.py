"""One rollup builder per site at a time: a lease in ``rollup_sites`` (used by :mod:`footfall.stores.rollup_build`)."""

from __future__ import annotations

import contextlib
import os
import socket
import time as time_module
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from footfall.errors import StoreUnavailable
from footfall.stores.documents import (
    ROLLUP_SITES,
)

__all__ = ["LEASE_SECONDS", "_Lease", "_leased"]

LEASE_SECONDS = 120  # a builder renews its lease after every day it builds


class _Lease:
    """One builder per site at a time: a lease in ``rollup_sites`` (``lease_owner``, ``lease_until``).

    Two builders of one site could otherwise write an hour computed from older raw data after a
    newer one and clear the newer one's marks, leaving a stale hour that looks clean. The lease is
    taken by one conditional upsert (an expired lease or our own; a held one makes the insert fail
    on the duplicate ``_id``), renewed after every day built, and given back at the end; a builder
    that died leaves it to expire after :data:`LEASE_SECONDS`.
    """

    def __init__(self, db: Database, site: str) -> None:
        self.db, self.site = db, site
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    def take(self) -> bool:
        """Take or renew the lease; ``False`` when another builder holds it."""
        now = datetime.now(UTC)
        try:
            self.db[ROLLUP_SITES].update_one(
                {"_id": self.site, "$or": [{"lease_until": {"$exists": False}}, {"lease_until": {"$lt": now}},
                                           {"lease_owner": self.owner}]},
                {"$set": {"lease_owner": self.owner, "lease_until": now + timedelta(seconds=LEASE_SECONDS)}},
                upsert=True)
        except DuplicateKeyError:
            return False
        return True

    def wait(self, seconds: float) -> bool:
        """Take the lease, waiting up to ``seconds`` for another builder to finish."""
        deadline = time_module.monotonic() + seconds
        while not self.take():
            if time_module.monotonic() >= deadline:
                return False
            time_module.sleep(0.5)
        return True

    def renew(self) -> None:
        """:raises StoreUnavailable: the lease was lost (this builder took longer than the lease)."""
        if not self.take():
            raise StoreUnavailable(f"the rollup builder of site {self.site!r} lost its lease; another builder "
                                   "took over")

    def give_back(self) -> None:
        """End the lease (ignored when it is no longer ours)."""
        with contextlib.suppress(PyMongoError):
            self.db[ROLLUP_SITES].update_one({"_id": self.site, "lease_owner": self.owner},
                                             {"$unset": {"lease_owner": "", "lease_until": ""}})


@contextlib.contextmanager
def _leased(db: Database, site: str, wait: float) -> Iterator[_Lease | None]:
    lease = _Lease(db, site)
    try:
        held = lease.wait(wait) if wait else lease.take()
    except PyMongoError as exc:
        raise StoreUnavailable(f"MongoDB did not answer: {exc}") from exc
    try:
        yield lease if held else None
    finally:
        if held:
            lease.give_back()


