"""Options shared by the commands, and the parsers that turn command-line text into checked values."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from conveyor.app import Conveyor
from conveyor.cli.errors import UsageError, describe_validation
from conveyor.queue.errors import UnknownQueueError
from conveyor.queue.options import JobOptions
from conveyor.redis.discovery import EmbeddedMode
from conveyor.standard import APP_ENV_VAR, DEFAULT_APP, load_app

AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar=APP_ENV_VAR,
        show_envvar=True,
        help=f"The application as 'package.module:attribute' (a Conveyor or a factory). Default: {DEFAULT_APP}.",
    ),
]
TenantOption = Annotated[
    str | None,
    typer.Option(
        "--tenant",
        envvar="CONVEYOR_TENANT",
        show_envvar=True,
        help="Act in this tenant's namespace (its queues only) instead of the deployment's own queues.",
    ),
]
QueueArg = Annotated[
    str, typer.Argument(metavar="QUEUE", help="Queue name (see `conveyor stats`).", show_default=False)
]
JobIdArg = Annotated[str, typer.Argument(metavar="ID", help="Job id.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
HostOption = Annotated[str | None, typer.Option("--host", help="Bind address (default: CONVEYOR_API_HOST).")]
PortOption = Annotated[int | None, typer.Option("--port", help="Port (default: CONVEYOR_API_PORT).")]


def open_app(spec: str | None, *queues: str, embedded: EmbeddedMode = EmbeddedMode.ATTACH) -> Conveyor:
    """Load the application and check that every named queue is one of its queues (before touching Redis).

    With no Redis configured the app will only attach to a running embedded server (`embedded`): only
    `conveyor up` and `conveyor worker` may start one.
    """
    app = load_app(spec)
    app.embedded_mode = embedded
    for name in queues:
        if name not in app.queue_names:
            raise UnknownQueueError(name, app.queue_names)
    return app


def parse_json(text: str, what: str) -> Any:
    """Parse JSON given on the command line; a clear usage error names the argument."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{what} is not valid JSON ({exc.msg} at column {exc.colno}). Quote it for the shell, e.g. '{{\"a\": 1}}'."
        ) from exc


def parse_queue_list(text: str | None, app: Conveyor) -> list[str] | None:
    """`a,b` → `["a", "b"]`, each checked against the app's queues; None (all queues) when not given."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--queues is empty; give queue names separated by commas, or leave it out for all queues.")
    for name in names:
        if name not in app.queue_names:
            raise UnknownQueueError(name, app.queue_names)
    return names


def parse_concurrency(values: Sequence[str], queues: Sequence[str]) -> dict[str, int]:
    """`["indexing=8", "2"]` → per-queue concurrency; a bare number applies to every served queue."""
    result: dict[str, int] = {}
    for value in values:
        name, sep, number = value.rpartition("=")
        if not number.strip().isdigit() or int(number) < 1:
            raise UsageError(f"--concurrency {value!r}: use QUEUE=N or N, with N a positive integer.")
        if not sep:
            result.update(dict.fromkeys(queues, int(number)))
        elif name.strip() not in queues:
            raise UsageError(
                f"--concurrency {value!r}: {name.strip()!r} is not one of the served queues {list(queues)}."
            )
        else:
            result[name.strip()] = int(number)
    return result


def parse_backoff(text: str) -> dict[str, Any]:
    """`exponential:1000` → `{"type": "exponential", "delay": 1000}` (also `fixed:500`, or just `exponential`)."""
    kind, _, delay = text.partition(":")
    if kind not in ("fixed", "exponential") or (delay and not delay.isdigit()):
        raise UsageError(f"--backoff {text!r}: use fixed:MS or exponential:MS, e.g. exponential:1000.")
    return {"type": kind, "delay": int(delay)} if delay else {"type": kind}


def parse_deadline(text: str) -> datetime:
    """An ISO 8601 time (`2026-01-24T18:00:00Z`); without a zone it is taken as UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--deadline {text!r} is not an ISO 8601 time, e.g. 2026-01-24T18:00:00Z.") from exc


def parse_priority(text: str) -> str | int:
    """`high` stays a name; `7` becomes the number 7."""
    return int(text) if text.isdigit() else text


def job_options(fields: dict[str, Any], where: str = "") -> JobOptions:
    """Validated job options; invalid ones are a usage error that names the field."""
    try:
        return JobOptions.model_validate(fields)
    except ValidationError as exc:
        raise UsageError(f"{where}invalid job options ({describe_validation(exc)}).") from exc
