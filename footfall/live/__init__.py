"""Live numbers: per-site counters kept in Redis by the request's own Lua round trip, the stats
object built from them (``GET /api/stats``), and their push to dashboards (Server-Sent Events and
WebSocket, :mod:`footfall.live.app`)."""

from footfall.live.counters import CounterSnapshot, build_stats, location_label

__all__ = ["CounterSnapshot", "build_stats", "location_label"]
