"""Dashboard queries: aggregation pipeline builders (pure) and the functions that run them."""

from footfall.dashboard_queries.summary import DayRange, day_range, summarize, summary_pipeline

__all__ = ["DayRange", "day_range", "summarize", "summary_pipeline"]
