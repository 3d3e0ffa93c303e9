"""Bytes per page view of the raw collections and of the rollups: ``.venv/bin/python -m benchmarks.storage [SIZE]``.

Loads SIZE page views (default 100,000) of the query benchmark's data (:mod:`benchmarks.query_data`:
copies of the semicomplete log in June 2015) into a fresh SecantusDB on disk, builds the rollups, and
prints each collection's documents, data and index bytes (``collStats``) per page view.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from pymongo import MongoClient

from benchmarks.query_data import SITE, build_rollups, load, read_seed, window_of
from footfall.dashboard_queries import Period
from footfall.embedded import start_mongodb

COLLECTIONS = ("sessions", "page_views", "custom_events", "visitors", "rollups", "rollup_sites")


def main(argv: list[str] | None = None) -> int:
    """Load, build, print one line per collection; 0 when it ran."""
    args = sys.argv[1:] if argv is None else argv
    size = int(args[0]) if args else 100_000
    server = start_mongodb(Path(tempfile.mkdtemp(prefix="footfall-storage-")))
    try:
        client: MongoClient = MongoClient(server.url)
        db = client["footfall"]
        periods = [Period(date(2015, 6, 1), date(2015, 6, 30), ZoneInfo(z)) for z in ("UTC", "Europe/Berlin")]
        load(db, read_seed(client["footfall_seed"]), size, window_of([(p.start, p.end) for p in periods]))
        build_rollups(db, SITE)
        page_views = max(db.page_views.count_documents({}), 1)
        for name in COLLECTIONS:
            stats = db.command("collStats", name)
            data, indexes = stats.get("size", 0), stats.get("totalIndexSize", 0)
            print(f"{name:14s} documents {stats.get('count', 0):>9,}  data {data:>12,} B  indexes {indexes:>12,} B  "
                  f"{(data + indexes) / page_views:8.1f} B per page view")
        client.close()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
