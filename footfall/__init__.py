"""footfall: session-tracking middleware and analytics backend for true visits versus unique visitors."""

from footfall.errors import ConfigurationError, FootfallError, InvalidEvent, StoreUnavailable
from footfall.middleware import Case, FootfallMiddleware, Visit, current_visit
from footfall.settings import Settings

__all__ = [
    "Case",
    "ConfigurationError",
    "FootfallError",
    "FootfallMiddleware",
    "InvalidEvent",
    "Settings",
    "StoreUnavailable",
    "Visit",
    "current_visit",
]
__version__ = "0.1.0"
