"""One database per test module, seeded once with :func:`data.make_dataset` (the queries only read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from footfall.stores.mongo_writer import ensure_indexes
from footfall.stores.rollup_build import ensure_built
from tests.dashboard_queries.data import Dataset, make_dataset


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="module")
def seeded_db(mongodb_base_uri: str, dataset: Dataset) -> Iterator[Database]:
    """A database of this module's own holding ``dataset``, with footfall's indexes and the rollups
    built from it (as the drain's builder builds a site it meets for the first time)."""
    name = f"footfall_queries_{uuid.uuid4().hex[:12]}"
    client: MongoClient = MongoClient(mongodb_base_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    db = client[name]
    ensure_indexes(db)
    dataset.insert(db)
    for site in sorted({doc["site"] for doc in dataset.sessions}):
        ensure_built(db, site)
    yield db
    client.drop_database(name)
    client.close()
