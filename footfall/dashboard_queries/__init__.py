"""Dashboard queries: aggregation pipeline builders (pure) and the functions that run them.

Every function takes the footfall database first and returns plain dicts (JSON-ready but for the
summary's datetimes-free numbers); :func:`as_dataframe` turns any result into a pandas DataFrame.
"""

from footfall.dashboard_queries.breakdown import breakdown, breakdown_query
from footfall.dashboard_queries.export import breakdown_csv, export_breakdown
from footfall.dashboard_queries.filters import DIMENSIONS, Clause, format_filters, parse_filters
from footfall.dashboard_queries.frames import as_dataframe
from footfall.dashboard_queries.periods import Bucket, DayRange, Period, buckets, day_range, parse_period
from footfall.dashboard_queries.pipeline import Query
from footfall.dashboard_queries.sessions import list_sessions, list_sites, sessions_query, sites_query
from footfall.dashboard_queries.summary import summarize, summary_query
from footfall.dashboard_queries.timeseries import timeseries, timeseries_query

__all__ = [
    "Bucket", "Clause", "DIMENSIONS", "DayRange", "Period", "Query", "as_dataframe", "breakdown", "breakdown_csv",
    "breakdown_query", "buckets", "day_range", "export_breakdown", "format_filters", "list_sessions", "list_sites",
    "parse_filters", "parse_period", "sessions_query", "sites_query", "summarize", "summary_query", "timeseries",
    "timeseries_query",
]
