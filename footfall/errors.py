"""footfall's exceptions: one root, a few subclasses a caller can act on."""

from __future__ import annotations

__all__ = ["FootfallError", "ConfigurationError", "StoreUnavailable", "InvalidEvent", "InvalidQuery"]


class FootfallError(Exception):
    """Root of every exception footfall raises on purpose."""


class ConfigurationError(FootfallError):
    """A ``FOOTFALL_*`` setting is missing or malformed; the message names it and its value."""


class StoreUnavailable(FootfallError):
    """Redis or MongoDB did not answer; the message names the store. Raised ``from`` the driver error."""


class InvalidEvent(FootfallError):
    """A tracked event was rejected.

    :ivar status: the HTTP status to answer with (400 for a malformed body, 413 for an oversized one).
    :ivar message: what was wrong, for the JSON ``{"error": ...}`` body.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class InvalidQuery(FootfallError, ValueError):
    """A dashboard query's parameter was rejected (a malformed date, an unknown time zone, a bad
    filter, an unknown dimension...). The HTTP API answers it with 400 ``{"error": message,
    "parameter": parameter}``.

    :ivar parameter: the name of the offending parameter (``"start"``, ``"tz"``, ``"filters"``...).
    :ivar message: what was wrong, naming the parameter and the value.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message
