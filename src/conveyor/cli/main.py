"""The `conveyor` command: a Typer app whose commands live in the modules beside this one.

Exit codes (see `conveyor.cli.errors`): 0 ok, 1 refused or failed, 2 usage or validation error,
3 Redis unavailable or out of memory, or configuration error.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from conveyor.cli.startup import resume_collector
from conveyor.observability import configure_logging

if TYPE_CHECKING:
    from typer import _click as click  # Typer's own copy of Click, whose types TyperGroup's methods take

# Every subcommand: name -> (module of conveyor.cli, attribute: a command function or a Typer of subcommands,
# the module's attribute holding the command's Click context settings, if any), in the order `conveyor --help`
# lists them. Each module is imported when its command runs (or help lists them all): `conveyor worker` does
# not load the code of the dead-letter, indexing or inspection commands and what they render with.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "up": ("serve", "up", None),
    "worker": ("serve", "worker", None),
    "add": ("produce", "add", None),
    "job": ("inspection", "job", None),
    "jobs": ("inspection", "jobs", None),
    "stats": ("inspection", "stats", None),
    "limits": ("limit_commands", "limits", None),
    "pause": ("manage", "pause", None),
    "resume": ("manage", "resume", None),
    "clear": ("manage", "clear", None),
    "retry": ("manage", "retry", None),
    "cancel": ("manage", "cancel", None),
    "promote": ("manage", "promote", None),
    "remove": ("manage", "remove", None),
    "serve": ("api_commands", "serve", None),
    "index": ("index_commands", "index", None),
    "search": ("index_commands", "search", "SEARCH_CONTEXT"),
    "embed": ("index_commands", "embed", None),
    "token": ("api_commands", "tokens_cli", None),
    "ai": ("index_commands", "ai_cli", None),
    "dlq": ("dlq_commands", "dlq_cli", None),
    "schedule": ("schedule_commands", "schedule_cli", None),
    "tenant": ("tenant_commands", "tenant_cli", None),
}


class LazyCommands(TyperGroup):
    """The `conveyor` group: a subcommand's module is imported when the subcommand is looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in COMMANDS:  # a typo: load them all, so that "Did you mean" can suggest one
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


def _load(name: str) -> click.Command:
    module_name, attribute, context_attribute = COMMANDS[name]
    module = importlib.import_module(f"conveyor.cli.{module_name}")
    target = getattr(module, attribute)
    if isinstance(target, typer.Typer):
        command: click.Command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        context_settings: dict[str, Any] | None = getattr(module, context_attribute) if context_attribute else None
        single.command(name=name, context_settings=context_settings)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


cli = typer.Typer(
    cls=LazyCommands,
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
    resume_collector()  # the command's module is imported by now (see conveyor.cli.startup)
    # One handler for every command: console or JSON lines (CONVEYOR_LOG_FORMAT) with job fields on job logs.
    configure_logging(level="DEBUG" if verbose else os.environ.get("CONVEYOR_LOG_LEVEL", "WARNING"))
    if data_dir is not None:
        # Through the environment, so the settings (and worker processes started by --processes) see it too.
        os.environ["CONVEYOR_DATA_DIR"] = str(data_dir.expanduser().resolve())
