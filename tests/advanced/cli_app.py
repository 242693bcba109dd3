"""The app the advanced CLI tests load with `--app tests.advanced.cli_app:create_app`."""

from __future__ import annotations

from conveyor import Conveyor


def create_app() -> Conveyor:
    """A Conveyor with the advanced tests' handlers, settings from the environment."""
    from tests.advanced.conftest import register_handlers

    return register_handlers(Conveyor())
