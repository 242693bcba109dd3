"""Configuration errors."""

from __future__ import annotations

from conveyor.errors import ConveyorError


class ConfigError(ConveyorError):
    """A setting is missing or invalid; the message names the variable and the fix."""
