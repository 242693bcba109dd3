"""`conveyor schedule add|list|remove`: jobs added on a cron expression or a fixed interval.

Mount in `conveyor.cli.main`:

    cli.add_typer(schedule_commands.schedule_cli, name="schedule")

`add` is idempotent by key: running it again with the same arguments changes nothing, with other arguments it
updates the schedule. Workers fire the ticks (one of them at a time, whichever holds the scheduler lock).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, UsageError, cli_command, run_async
from conveyor.cli.options import (
    AppOption,
    JsonOption,
    TenantOption,
    job_options,
    open_app,
    parse_backoff,
    parse_json,
    parse_priority,
)
from conveyor.cli.output import print_json, print_warning, say, stdout, when
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.errors import InvalidOptionsError
from conveyor.queue.schedules import Schedule, Schedules, ScheduleSpec, schedule_spec

schedule_cli = typer.Typer(
    help="Schedules: a job on every tick of a cron expression or an interval.", no_args_is_help=True
)

KeyArg = Annotated[str, typer.Argument(metavar="KEY", help="Names the schedule (letters, digits, '.', '_', '-').")]


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """A schedule as JSON for `--json`."""
    return {
        **schedule.spec.model_dump(mode="json", exclude_defaults=True),
        "tz": schedule.spec.tz,
        "catch_up": schedule.spec.catch_up,
        "next_run": schedule.next_run.isoformat() if schedule.next_run else None,
        "created_at": schedule.created_at.isoformat(),
        "updated_at": schedule.updated_at.isoformat(),
    }


@schedule_cli.command("add")
@cli_command
def add(
    key: KeyArg,
    queue: Annotated[str, typer.Option("--queue", "-q", help="The queue its jobs go to.")],
    job_type: Annotated[str, typer.Option("--type", "-t", help="The job type.")],
    data: Annotated[str | None, typer.Option(metavar="JSON", help="The payload of every tick's job.")] = None,
    cron: Annotated[
        str | None, typer.Option(help="Cron: 5 fields, or 6 with seconds first ('*/10 * * * * *').")
    ] = None,
    every_ms: Annotated[int | None, typer.Option(min=10, help="Or a fixed interval in ms.")] = None,
    tz: Annotated[str, typer.Option(help="IANA time zone of the cron expression.")] = "UTC",
    catch_up: Annotated[str, typer.Option(help="A tick missed while no worker ran: once or skip.")] = "once",
    priority: Annotated[str | None, typer.Option(help="critical, high, normal, low, or a number.")] = None,
    attempts: Annotated[int | None, typer.Option(min=1, help="Attempts of each job.")] = None,
    backoff: Annotated[str | None, typer.Option(help="Retry backoff: fixed:MS or exponential:MS.")] = None,
    timeout_ms: Annotated[int | None, typer.Option(min=1, help="Time limit of one attempt, in ms.")] = None,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Create or update a schedule."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    if (cron is None) == (every_ms is None):
        raise UsageError("Give exactly one of --cron EXPRESSION or --every-ms N.")
    if catch_up not in ("once", "skip"):
        raise UsageError(f"--catch-up {catch_up!r}: use once or skip.")
    flags: dict[str, Any] = {
        "priority": None if priority is None else parse_priority(priority),
        "attempts": attempts,
        "backoff": None if backoff is None else parse_backoff(backoff),
        "timeout_ms": timeout_ms,
    }
    options = job_options({name: value for name, value in flags.items() if value is not None})
    payload = None if data is None else parse_json(data, "--data")
    try:
        spec = schedule_spec(
            key=key, queue=queue, type=job_type, data=payload, options=options, cron=cron, every_ms=every_ms, tz=tz,
            catch_up=catch_up,
        )  # fmt: skip
    except InvalidOptionsError as exc:
        raise UsageError(str(exc)) from exc
    saved, warning = run_async(_add(app, tenant, spec))
    if warning is not None:  # saved all the same: a worker may start before the first tick
        print_warning(warning)
    if as_json:
        print_json(schedule_json(saved))
        return
    say(f"Schedule {key}: {spec.describe()} adds {job_type} to {queue}; next run {when(saved.next_run)}.")


async def _add(app: Conveyor, tenant: str | None, spec: ScheduleSpec) -> tuple[Schedule, str | None]:
    """Save the schedule; also the warning `add` gives when no live worker handles its job type."""
    async with connected(app, tenant) as view:
        payload = view.validate_payload(spec.queue, spec.type, spec.data)
        saved = await Schedules.of(view).add(spec.model_copy(update={"data": payload}))
        return saved, await view.unserved_warning(spec.queue, [spec.type])


@schedule_cli.command("list")
@cli_command
def list_schedules(as_json: JsonOption = False, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """List schedules with their next run."""
    app = open_app(app_spec)
    check_tenant(tenant)
    schedules = run_async(_all(app, tenant))
    if as_json:
        print_json([schedule_json(schedule) for schedule in schedules])
        return
    if not schedules:
        say("No schedules. Add one with `conveyor schedule add KEY --queue Q --type T --cron '0 * * * *'`.")
        return
    table = Table("Key", "Queue / type", "When", "Missed ticks", "Next run")
    for schedule in schedules:
        spec = schedule.spec
        table.add_row(spec.key, f"{spec.queue} / {spec.type}", spec.describe(), spec.catch_up, when(schedule.next_run))
    stdout().print(table)


async def _all(app: Conveyor, tenant: str | None) -> list[Schedule]:
    async with connected(app, tenant) as view:
        return await Schedules.of(view).all()


@schedule_cli.command("remove")
@cli_command
def remove(key: KeyArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Remove a schedule; jobs it already added stay."""
    app = open_app(app_spec)
    check_tenant(tenant)
    if not run_async(_remove(app, tenant, key)):
        raise RefusedError(f"No schedule {key!r}; list them with `conveyor schedule list`.")
    say(f"Removed schedule {key}.")


async def _remove(app: Conveyor, tenant: str | None, key: str) -> bool:
    async with connected(app, tenant) as view:
        return await Schedules.of(view).remove(key)
