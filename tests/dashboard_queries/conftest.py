"""One database per test module, seeded once with :func:`data.make_dataset` (the queries only read)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from footfall.stores.mongo_writer import ensure_indexes
from tests.dashboard_queries.data import Dataset, make_dataset


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture(scope="module")
def seeded_db(mongodb_base_uri: str, dataset: Dataset) -> Iterator[Database]:
    """A database of this module's own holding ``dataset`` (and its rollups), with footfall's indexes."""
    name = f"footfall_queries_{uuid.uuid4().hex[:12]}"
    client: MongoClient = MongoClient(mongodb_base_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
    db = client[name]
    ensure_indexes(db)
    dataset.insert(db)
    yield db
    client.drop_database(name)
    client.close()
