"""The entry point of the `conveyor` script and of `python -m conveyor`."""

from __future__ import annotations

from conveyor.cli.startup import pause_collector


def main() -> None:
    """Run the `conveyor` command; its imports run with the garbage collector paused (`conveyor.cli.startup`)."""
    pause_collector()
    from conveyor.cli.main import cli  # with every import it makes, while the collector is paused

    cli()
