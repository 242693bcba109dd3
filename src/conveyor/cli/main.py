"""The `conveyor` command: a Typer app whose commands live in the modules beside this one.

Exit codes (see `conveyor.cli.errors`): 0 ok, 1 refused or failed, 2 usage or validation error,
3 Redis unavailable or out of memory, or configuration error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import (
    api_commands,
    dlq_commands,
    index_commands,
    inspection,
    limit_commands,
    manage,
    produce,
    schedule_commands,
    serve,
    tenant_commands,
)
from conveyor.observability import configure_logging

cli = typer.Typer(
    name="conveyor",
    help="Background jobs on Redis: run workers, add jobs, inspect and manage queues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    epilog="Exit codes: 0 ok, 1 refused or failed, 2 usage or validation error, 3 Redis unavailable "
    "or out of memory, or config error.",
)


@cli.callback()
def _configure(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging on stderr, with tracebacks of errors.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="The embedded Redis's data dir to use (as CONVEYOR_DATA_DIR). Default: the running one found "
            "in ./.conveyor or a folder above, or the only one in the user registry.",
            show_default=False,
        ),
    ] = None,
) -> None:
    # One handler for every command: console or JSON lines (CONVEYOR_LOG_FORMAT) with job fields on job logs.
    configure_logging(level="DEBUG" if verbose else os.environ.get("CONVEYOR_LOG_LEVEL", "WARNING"))
    if data_dir is not None:
        # Through the environment, so the settings (and worker processes started by --processes) see it too.
        os.environ["CONVEYOR_DATA_DIR"] = str(data_dir.expanduser().resolve())


cli.command()(serve.up)
cli.command()(serve.worker)
cli.command()(produce.add)
cli.command()(inspection.job)
cli.command()(inspection.jobs)
cli.command()(inspection.stats)
cli.command()(limit_commands.limits)
cli.command()(manage.pause)
cli.command()(manage.resume)
cli.command()(manage.clear)
cli.command()(manage.retry)
cli.command()(manage.cancel)
cli.command()(manage.promote)
cli.command()(manage.remove)
cli.command()(api_commands.serve)
cli.add_typer(api_commands.tokens_cli, name="token")
cli.command()(index_commands.index)
cli.command(context_settings=index_commands.SEARCH_CONTEXT)(index_commands.search)
cli.command()(index_commands.embed)
cli.add_typer(index_commands.ai_cli, name="ai")
cli.add_typer(dlq_commands.dlq_cli, name="dlq")
cli.add_typer(schedule_commands.schedule_cli, name="schedule")
cli.add_typer(tenant_commands.tenant_cli, name="tenant")


def main() -> None:
    """Entry point of the `conveyor` script and of `python -m conveyor`."""
    cli()
