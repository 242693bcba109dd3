"""Managing queues and jobs: pause, resume, clear, retry, cancel, promote, remove."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JobIdArg, QueueArg, open_app
from conveyor.cli.output import say
from conveyor.cli.session import connected
from conveyor.queue.errors import JobNotFoundError, QueueBusyError
from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue, QueueCounts

JobOperation = Callable[[Queue, str], Awaitable[None]]


@cli_command
def pause(queue: QueueArg, app_spec: AppOption = None) -> None:
    """Pause a queue: no worker starts its jobs until it is resumed; active jobs finish."""
    app = open_app(app_spec, queue)
    run_async(_pause(app, queue, paused=True))
    say(f"Paused {queue}: no new jobs start until `conveyor resume {queue}`; active jobs finish.")


@cli_command
def resume(queue: QueueArg, app_spec: AppOption = None) -> None:
    """Resume a paused queue."""
    app = open_app(app_spec, queue)
    run_async(_pause(app, queue, paused=False))
    say(f"Resumed {queue}.")


async def _pause(app: Conveyor, queue: str, *, paused: bool) -> None:
    async with connected(app):
        await (app.queue(queue).pause() if paused else app.queue(queue).resume())


@cli_command
def clear(
    queue: QueueArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option(help="Clear even while jobs are active (their results are lost).")] = False,
    app_spec: AppOption = None,
) -> None:
    """Delete every job of a queue.

    Asks first unless --yes; refuses while jobs are active unless --force.
    """
    app = open_app(app_spec, queue)
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"Not a terminal, so no confirmation can be asked: run `conveyor clear {queue} --yes`.")
    counts = run_async(_counts(app, queue))
    if counts.active and not force:
        raise QueueBusyError(
            f"Queue {queue!r} has {counts.active} active job(s); pause it and wait for them, or add --force."
        )
    total = counts.pending + counts.active + counts.completed + counts.failed + counts.waiting_children
    if not yes and not typer.confirm(f"Delete all {total} job(s) of {queue}?", default=False):
        raise RefusedError(f"Nothing was deleted from {queue}.")
    run_async(_clear(app, queue, force=force))
    say(f"Cleared {queue}: deleted {total} job(s).")


async def _counts(app: Conveyor, queue: str) -> QueueCounts:
    async with connected(app):
        return await app.queue(queue).counts()


async def _clear(app: Conveyor, queue: str, *, force: bool) -> None:
    async with connected(app):
        await app.queue(queue).clear(force=force)


@cli_command
def retry(
    queue: QueueArg,
    job_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="A failed job's id.", show_default=False)] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Retry every failed job of the queue.")] = False,
    app_spec: AppOption = None,
) -> None:
    """Retry a failed job (or every failed one) with fresh attempts."""
    if (job_id is None) == (not all_failed):
        raise UsageError("Give either a job ID or --all-failed.")
    app = open_app(app_spec, queue)
    if job_id is None:
        moved = run_async(_retry_all(app, queue))
        say(f"Retried {moved} failed job(s) of {queue}.")
        return
    run_async(_on_job(app, queue, job_id, Queue.retry))
    say(f"Retrying job {job_id} of {queue}.")


async def _retry_all(app: Conveyor, queue: str) -> int:
    async with connected(app):
        return await app.queue(queue).retry_all_failed()


@cli_command
def cancel(queue: QueueArg, job_id: JobIdArg, app_spec: AppOption = None) -> None:
    """Cancel a job: a pending one is removed, an active one stopped (it fails as cancelled)."""
    app = open_app(app_spec, queue)
    was = run_async(_cancel(app, queue, job_id))
    if was is JobState.ACTIVE:
        say(f"Asked the worker running job {job_id} to stop; it fails as cancelled, without retries.")
    else:
        say(f"Cancelled job {job_id} of {queue} (it was {was.value}; it is removed).")


async def _cancel(app: Conveyor, queue: str, job_id: str) -> JobState:
    async with connected(app):
        return await app.queue(queue).cancel(job_id)


@cli_command
def promote(queue: QueueArg, job_id: JobIdArg, app_spec: AppOption = None) -> None:
    """Run a delayed job now."""
    app = open_app(app_spec, queue)
    run_async(_on_job(app, queue, job_id, Queue.promote))
    say(f"Promoted job {job_id} of {queue}: it runs as soon as a worker is free.")


@cli_command
def remove(queue: QueueArg, job_id: JobIdArg, app_spec: AppOption = None) -> None:
    """Delete a job that is not active (cancel an active one instead)."""
    app = open_app(app_spec, queue)
    run_async(_on_job(app, queue, job_id, Queue.remove))
    say(f"Removed job {job_id} from {queue}.")


async def _on_job(app: Conveyor, queue_name: str, job_id: str, operation: JobOperation) -> None:
    async with connected(app):
        queue = app.queue(queue_name)
        if await queue.state_of(job_id) is JobState.UNKNOWN:
            raise JobNotFoundError(queue_name, job_id)  # a clear "not found" rather than a script's refusal
        await operation(queue, job_id)
