"""CSV of a breakdown (the ``csv`` module; pure apart from :func:`export_breakdown`'s query)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.database import Database

from footfall.dashboard_queries.breakdown import breakdown
from footfall.dashboard_queries.filters import Clause

__all__ = ["breakdown_csv", "export_breakdown", "CSV_COLUMNS"]

CSV_COLUMNS = ("value", "total_visits", "unique_visitors", "page_views", "bounce_rate", "visit_duration")


def breakdown_csv(result: dict[str, Any]) -> str:
    """The rows of a :func:`~footfall.dashboard_queries.breakdown.breakdown` result as CSV text.

    :param result: the breakdown's dict.
    :return: RFC 4180 CSV (``\\r\\n`` line ends) with a header row: the dimension's name, then
        ``total_visits``, ``unique_visitors``, ``page_views``, ``bounce_rate`` (0..1),
        ``visit_duration`` (seconds), and ``events`` for the ``event`` dimension.
    """
    columns = list(CSV_COLUMNS) + (["events"] if result["dimension"] == "event" else [])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([result["dimension"], *columns[1:]])
    for row in result["results"]:
        writer.writerow([row[column] for column in columns])
    return out.getvalue()


def export_breakdown(db: Database, start: datetime, end: datetime, dimension: str, site: str | None = None, *,
                     filters: str | Iterable[Clause] | None = None) -> str:
    """Every row of a breakdown (no pagination) as CSV (one round trip); see :func:`breakdown_csv`.

    :raises InvalidQuery: a bad dimension or filters. :raises StoreUnavailable: MongoDB did not answer.
    """
    return breakdown_csv(breakdown(db, start, end, dimension, site, filters=filters, limit=None))
