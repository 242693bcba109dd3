"""`conveyor add`: enqueue one job, or many from a JSON Lines file."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Annotated, Any

import typer

from conveyor.app import Conveyor
from conveyor.cli.errors import UsageError, cli_command, run_async
from conveyor.cli.options import (
    AppOption,
    QueueArg,
    TenantOption,
    job_options,
    open_app,
    parse_backoff,
    parse_deadline,
    parse_json,
    parse_priority,
)
from conveyor.cli.output import print_warning
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.errors import InvalidPayloadError, PayloadTooLargeError
from conveyor.queue.queue import JOB_TYPE_RULE, NewJob, encode_payload, valid_job_type

BULK_KEYS = frozenset({"type", "data", "options"})
MAX_REPORTED_LINES = 5


@cli_command
def add(
    queue: QueueArg,
    job_type: Annotated[str | None, typer.Argument(metavar="TYPE", help="Job type.", show_default=False)] = None,
    data: Annotated[str | None, typer.Argument(metavar="[DATA_JSON]", help="Payload as JSON.")] = None,
    priority: Annotated[
        str | None, typer.Option(help="critical, high, normal, low, or a number (1 runs first).")
    ] = None,
    delay_ms: Annotated[int | None, typer.Option(min=0, help="Run no sooner than this many ms from now.")] = None,
    attempts: Annotated[int | None, typer.Option(min=1, help="Attempts before the job fails.")] = None,
    backoff: Annotated[str | None, typer.Option(help="Retry backoff: fixed:MS or exponential:MS.")] = None,
    timeout_ms: Annotated[int | None, typer.Option(min=1, help="Time limit of one attempt, in ms.")] = None,
    deadline: Annotated[str | None, typer.Option(help="ISO 8601 time after which the job is not retried.")] = None,
    job_id: Annotated[str | None, typer.Option(help="Custom id; adding an existing id adds nothing.")] = None,
    bulk: Annotated[
        str | None,
        typer.Option(
            metavar="FILE.jsonl",
            help='One job per line: {"type": ..., "data": ..., "options": {...}}; "-" reads stdin. '
            "Options given as flags apply to every line.",
        ),
    ] = None,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Add a job (or, with --bulk, many) to a queue; prints the id(s), one per line.

    Every job is validated (payload model, options, size) before anything is written. With no Redis configured,
    the job goes to the running Conveyor (`conveyor up`) found from this folder; none running is exit code 3.
    """
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    flags = _option_flags(priority, delay_ms, attempts, backoff, timeout_ms, deadline, job_id)
    if bulk is not None:
        if job_type is not None or data is not None:
            raise UsageError("Give either TYPE [DATA_JSON] or --bulk FILE, not both.")
        jobs = parse_bulk(app, queue, _read_lines(bulk), flags, source=bulk)
        ids = run_async(_add_bulk(app, queue, jobs, tenant))
    else:
        if job_type is None:
            raise UsageError("Missing TYPE: `conveyor add QUEUE TYPE [DATA_JSON]` or `conveyor add QUEUE --bulk FILE`.")
        job = _checked(app, queue, job_type, None if data is None else parse_json(data, "DATA_JSON"), flags)
        ids = run_async(_add_bulk(app, queue, [job], tenant))
    for new_id in ids:
        typer.echo(new_id)


def _option_flags(
    priority: str | None,
    delay_ms: int | None,
    attempts: int | None,
    backoff: str | None,
    timeout_ms: int | None,
    deadline: str | None,
    job_id: str | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "priority": None if priority is None else parse_priority(priority),
        "delay_ms": delay_ms,
        "attempts": attempts,
        "backoff": None if backoff is None else parse_backoff(backoff),
        "timeout_ms": timeout_ms,
        "deadline": None if deadline is None else parse_deadline(deadline),
        "job_id": job_id,
    }
    return {name: value for name, value in fields.items() if value is not None}


def _checked(app: Conveyor, queue: str, job_type: str, data: Any, options: dict[str, Any], where: str = "") -> NewJob:
    """The job as it will be added, after every check `add` makes, so that a bulk add fails before writing."""
    if not valid_job_type(job_type):
        raise UsageError(f"{where}the job type must be {JOB_TYPE_RULE}.")
    opts = job_options(options, where)
    stored = app.validate_payload(queue, job_type, data)
    encode_payload({} if stored is None else stored, app.settings.conveyor_max_payload_bytes)
    return NewJob(job_type, data, opts)


def parse_bulk(
    app: Conveyor, queue: str, lines: Iterable[str], defaults: dict[str, Any], source: str = "input"
) -> list[NewJob]:
    """Validate every line of a JSON Lines input; all problems are reported with line numbers, none written.

    Raises:
        UsageError: a line is not a valid job (the message lists up to five lines and their problems).
    """
    jobs: list[NewJob] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            jobs.append(_bulk_job(app, queue, line, defaults, where=f"line {number}: "))
        except (UsageError, InvalidPayloadError, PayloadTooLargeError) as exc:
            problems.append(str(exc) if str(exc).startswith("line ") else f"line {number}: {exc}")
    if problems:
        shown = "; ".join(problems[:MAX_REPORTED_LINES])
        more = f"; and {len(problems) - MAX_REPORTED_LINES} more" if len(problems) > MAX_REPORTED_LINES else ""
        raise UsageError(f"{len(problems)} invalid line(s) in {source}, nothing was added: {shown}{more}")
    if not jobs:
        raise UsageError(f"{source} has no jobs; give one JSON object per line.")
    return jobs


def _bulk_job(app: Conveyor, queue: str, line: str, defaults: dict[str, Any], where: str) -> NewJob:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(raw, dict) or "type" not in raw:
        raise UsageError(f'{where}expected an object like {{"type": "...", "data": {{...}}, "options": {{...}}}}')
    unknown = sorted(set(raw) - BULK_KEYS)
    if unknown:
        raise UsageError(f"{where}unknown key(s) {unknown}; use type, data and options")
    options = raw.get("options") or {}
    if not isinstance(options, dict):
        raise UsageError(f"{where}options must be an object")
    return _checked(app, queue, raw["type"], raw.get("data"), {**defaults, **options}, where)


def _read_lines(source: str) -> list[str]:
    if source == "-":
        return sys.stdin.read().splitlines()
    try:
        with open(source, encoding="utf-8") as file:
            return file.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read {source}: {exc}") from exc


async def _add_bulk(app: Conveyor, queue: str, jobs: list[NewJob], tenant: str | None) -> list[str]:
    async with connected(app, tenant) as view:
        if len(jobs) == 1:
            job = jobs[0]
            ids = [await view.add(queue, job.type, job.data, options=job.options, warn_unserved=False)]
        else:
            ids = await view.add_bulk(queue, jobs, warn_unserved=False)
        warning = await view.unserved_warning(queue, [job.type for job in jobs])
    if warning is not None:  # added all the same: a worker may start later
        print_warning(warning)
    return ids
