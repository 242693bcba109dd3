"""Settings from the environment, validated."""

from conveyor.config.errors import ConfigError
from conveyor.config.settings import (
    STANDARD_QUEUES,
    BackoffSettings,
    QueueSettings,
    RateLimit,
    Settings,
    load_settings,
)

__all__ = [
    "STANDARD_QUEUES",
    "BackoffSettings",
    "ConfigError",
    "QueueSettings",
    "RateLimit",
    "Settings",
    "load_settings",
]
