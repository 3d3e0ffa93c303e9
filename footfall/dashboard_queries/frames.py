"""pandas DataFrames from the query results (the optional ``pandas`` extra: ``pip install footfall[pandas]``)."""

from __future__ import annotations

from typing import Any

__all__ = ["as_dataframe"]


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError("as_dataframe needs pandas: pip install 'footfall[pandas]'") from None
    return pandas


def as_dataframe(result: dict[str, Any]) -> Any:
    """A :class:`pandas.DataFrame` of a query's result.

    - a breakdown (:func:`~footfall.dashboard_queries.breakdown.breakdown`): one row per value;
    - a time series (:func:`~footfall.dashboard_queries.timeseries.timeseries`): columns ``bucket``
      and the metric's name, one row per bucket;
    - raw sessions (:func:`~footfall.dashboard_queries.sessions.list_sessions`): one row per session;
    - a summary (:func:`~footfall.dashboard_queries.summary.summarize`): one row ``current`` and,
      when compared, ``previous`` and ``change`` (percent), one column per metric.

    :param result: the dict a query function returned.
    :return: the DataFrame.
    :raises ImportError: pandas is not installed (the message says how to install it).
    :raises ValueError: ``result`` is none of those shapes.
    """
    pandas = _pandas()
    if "results" in result and "dimension" in result:
        return pandas.DataFrame(result["results"])
    if "points" in result and "metric" in result:
        return pandas.DataFrame([{"bucket": p["bucket"], result["metric"]: p["value"]} for p in result["points"]])
    if "sessions" in result:
        return pandas.DataFrame(result["sessions"])
    if "total_visits" in result:
        rows = {"current": {k: v for k, v in result.items() if k not in ("previous", "change")}}
        for extra in ("previous", "change"):
            if extra in result:
                rows[extra] = result[extra]
        return pandas.DataFrame.from_dict(rows, orient="index")
    raise ValueError(f"as_dataframe: not a footfall query result (keys {sorted(result)[:10]})")
