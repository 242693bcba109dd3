"""The root of Conveyor's error hierarchy; every error says what to do about it."""

from __future__ import annotations


class ConveyorError(Exception):
    """Base class of every error Conveyor raises on purpose."""
