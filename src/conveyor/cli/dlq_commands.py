"""`conveyor dlq list|show|replay|purge`: the dead-letter queue from the command line.

Mount in `conveyor.cli.main`:

    cli.add_typer(dlq_commands.dlq_cli, name="dlq")

`replay` and `purge` act on the ids given, or on every letter matching `--type`/`--search`/`--failed-after`
(or `--all`); with a filter they first show how many letters match and ask (`--yes` skips the question,
`--dry-run` only counts).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Column, Table
from rich.text import Text

from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JobIdArg, JsonOption, QueueArg, TenantOption, open_app, parse_deadline
from conveyor.cli.output import print_json, say, stdout, when
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.dlq import DeadLetter, DeadLetterFilter, DeadLetters, PurgeReport, ReplayReport, Selection

PREVIEW_CHARS = 60

dlq_cli = typer.Typer(
    help="Dead letters: jobs that failed for good, to inspect, replay or purge.", no_args_is_help=True
)

TypeOption = Annotated[str | None, typer.Option("--type", help="Only letters of this job type.")]
SearchOption = Annotated[
    str | None, typer.Option(help="Only letters with this text (any case) in the id, type, payload or reason.")
]
AfterOption = Annotated[str | None, typer.Option(help="Only letters that failed at or after this ISO 8601 time.")]
IdsArg = Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="Dead letters by job id.")]
AllOption = Annotated[bool, typer.Option("--all", help="Every dead letter of the queue (with no filter).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Only count the letters it would act on.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _filter(job_type: str | None, search: str | None, after: str | None) -> DeadLetterFilter | None:
    if job_type is None and search is None and after is None:
        return None
    return DeadLetterFilter(job_type, search, parse_deadline(after) if after else None)


def _reason(letter: DeadLetter) -> str:
    text = letter.failed_reason.replace("\n", " ")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


# --- list and show ---------------------------------------------------------------------------------------


@dlq_cli.command("list")
@cli_command
def list_letters(
    queue: QueueArg,
    job_type: TypeOption = None,
    search: SearchOption = None,
    failed_after: AfterOption = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Show at most this many.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many matches first.")] = 0,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """List a queue's dead letters, newest first."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    wanted = _filter(job_type, search, failed_after)
    total, letters = run_async(_list(app, queue, tenant, wanted, offset, limit))
    if as_json:
        print_json({"total": total, "letters": letters})
        return
    if not letters:
        say(f"No dead letters in {queue}{' match' if wanted else ''} ({total} in all).")
        return
    job_id = Column("Job id", no_wrap=True, min_width=32)  # ids are 32 characters; shown whole, to copy
    table = Table(job_id, "Type", "Failed", "Attempts", "Reason", title=f"Dead letters of {queue} ({total} in all)")
    for letter in letters:
        table.add_row(letter.job_id, letter.type, when(letter.failed_at), str(letter.attempts_made), _reason(letter))
    stdout().print(table)


async def _list(
    app: Conveyor, queue: str, tenant: str | None, wanted: DeadLetterFilter | None, offset: int, limit: int
) -> tuple[int, list[DeadLetter]]:
    async with connected(app, tenant) as view:
        dlq = DeadLetters.of(view, queue)
        return await dlq.count(), await dlq.letters(wanted, offset=offset, limit=limit)


@dlq_cli.command("show")
@cli_command
def show(
    queue: QueueArg,
    job_id: JobIdArg,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Show one dead letter: payload, options, every failed attempt and the last stack trace."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    letter = run_async(_get(app, queue, tenant, job_id))
    if as_json:
        print_json(letter)
    else:
        stdout().print(render_letter(letter))


async def _get(app: Conveyor, queue: str, tenant: str | None, job_id: str) -> DeadLetter:
    async with connected(app, tenant) as view:
        return await DeadLetters.of(view, queue).get(job_id)


def _json_block(value: Any) -> Syntax:
    return Syntax(json.dumps(value, indent=2, ensure_ascii=False, default=str), "json", word_wrap=True)


def render_letter(letter: DeadLetter) -> RenderableType:
    """A dead letter for the terminal."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in (
        ("Queue / type", f"{letter.queue} / {letter.type}"),
        ("Reason", letter.failed_reason),
        ("Attempts", str(letter.attempts_made)),
        ("Created", when(letter.created_at, precise=True)),
        ("Failed", when(letter.failed_at, precise=True)),
        ("Dead-lettered", when(letter.dead_lettered_at, precise=True)),
        ("Worker", letter.worker or "-"),
        ("Flow parent", letter.parent or "-"),
    ):
        summary.add_row(label, Text(value))
    history = Table("Attempt", "Failed", "Worker", "Error")
    for record in letter.history:
        history.add_row(str(record.attempt), when(record.failed_at, precise=True), record.worker, record.error)
    parts: list[RenderableType] = [
        Panel(summary, title=f"Dead letter {escape(letter.job_id)}", title_align="left"),
        Panel(_json_block(letter.data), title="Payload", title_align="left"),
        Panel(_json_block(letter.options), title="Options", title_align="left"),
        Panel(history, title="Attempts", title_align="left"),
    ]
    if letter.stacktrace:
        parts.append(Panel(Text(letter.stacktrace[-1]), title="Last stack trace", title_align="left"))
    return Group(*parts)


# --- replay and purge ------------------------------------------------------------------------------------


def _selection(
    ids: list[str] | None, all_letters: bool, job_type: str | None, search: str | None, after: str | None
) -> Selection:
    wanted = _filter(job_type, search, after)
    if ids and (all_letters or wanted is not None):
        raise UsageError("Give job ids, or --all / a filter (--type, --search, --failed-after), not both.")
    if all_letters and wanted is not None:
        raise UsageError("--all selects every letter: leave out --type, --search and --failed-after.")
    if not ids and not all_letters and wanted is None:
        raise UsageError("Say which letters: job ids, --all, or a filter (--type, --search, --failed-after).")
    return Selection.of(ids, wanted if wanted is not None else (DeadLetterFilter() if all_letters else None))


Act = Callable[[DeadLetters, bool], Awaitable[Any]]


def _act(
    app: Conveyor, queue: str, tenant: str | None, selection: Selection, verb: str, dry_run: bool, yes: bool, act: Act
) -> Any:
    """Count first (for a filter), ask, then act; returns the report of the last call."""
    if selection.ids or dry_run or yes:
        return run_async(_run(app, queue, tenant, act, dry_run))
    if not sys.stdin.isatty():
        raise UsageError("Not a terminal, so no confirmation can be asked: add --yes (or --dry-run to count).")
    preview = run_async(_run(app, queue, tenant, act, True))
    more = " (and more: run again after)" if preview.truncated else ""
    if not preview.matched:
        return preview
    if not typer.confirm(f"{verb} {preview.matched} dead letter(s) of {queue}{more}?", default=False):
        raise RefusedError(f"Nothing was done to the dead letters of {queue}.")
    return run_async(_run(app, queue, tenant, act, False))


async def _run(app: Conveyor, queue: str, tenant: str | None, act: Act, dry_run: bool) -> Any:
    async with connected(app, tenant) as view:
        return await act(DeadLetters.of(view, queue), dry_run)


@dlq_cli.command("replay")
@cli_command
def replay(
    queue: QueueArg,
    ids: IdsArg = None,
    all_letters: AllOption = False,
    job_type: TypeOption = None,
    search: SearchOption = None,
    failed_after: AfterOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Enqueue a fresh job from each selected dead letter (id `<id>-r<failure time>`) and remove the letters."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    selection = _selection(ids, all_letters, job_type, search, failed_after)
    report: ReplayReport = _act(
        app, queue, tenant, selection, "Replay", dry_run, yes, lambda dlq, dry: dlq.replay(selection, dry_run=dry)
    )
    if as_json:
        print_json(report)
        return
    if report.dry_run:
        say(f"{report.matched} dead letter(s) of {queue} would be replayed.")
        return
    say(f"Replayed {report.replayed} of {report.matched} dead letter(s) of {queue}.")
    for new_id in report.new_job_ids:
        typer.echo(new_id)
    for job_id, reason in report.failures.items():
        say(f"Not replayed {job_id}: {reason}", style="red")
    if report.failures:
        raise typer.Exit(1)


@dlq_cli.command("purge")
@cli_command
def purge(
    queue: QueueArg,
    ids: IdsArg = None,
    all_letters: AllOption = False,
    job_type: TypeOption = None,
    search: SearchOption = None,
    failed_after: AfterOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Delete the selected dead letters for good."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    selection = _selection(ids, all_letters, job_type, search, failed_after)
    report: PurgeReport = _act(
        app, queue, tenant, selection, "Delete", dry_run, yes, lambda dlq, dry: dlq.purge(selection, dry_run=dry)
    )
    if as_json:
        print_json(report)
    elif report.dry_run:
        say(f"{report.matched} dead letter(s) of {queue} would be deleted.")
    else:
        say(f"Deleted {report.purged} dead letter(s) of {queue}.")
