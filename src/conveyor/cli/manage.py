"""Managing queues and jobs: pause, resume, clear, retry, cancel, promote, remove."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Annotated

import typer

from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JobIdArg, QueueArg, TenantOption, open_app
from conveyor.cli.output import say
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.errors import JobNotFoundError, QueueBusyError
from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue, QueueCounts

JobOperation = Callable[[Queue, str], Awaitable[None]]


@cli_command
def pause(queue: QueueArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Pause a queue: no worker starts its jobs until it is resumed; active jobs finish."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    run_async(_pause(app, tenant, queue, paused=True))
    say(f"Paused {queue}: no new jobs start until `conveyor resume {queue}`; active jobs finish.")


@cli_command
def resume(queue: QueueArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Resume a paused queue."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    run_async(_pause(app, tenant, queue, paused=False))
    say(f"Resumed {queue}.")


async def _pause(app: Conveyor, tenant: str | None, queue: str, *, paused: bool) -> None:
    async with connected(app, tenant) as view:
        await (view.queue(queue).pause() if paused else view.queue(queue).resume())


@cli_command
def clear(
    queue: QueueArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    force: Annotated[bool, typer.Option(help="Clear even while jobs are active (their results are lost).")] = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Delete every job of a queue.

    Asks first unless --yes; refuses while jobs are active unless --force.
    """
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"Not a terminal, so no confirmation can be asked: run `conveyor clear {queue} --yes`.")
    counts = run_async(_counts(app, tenant, queue))
    if counts.active and not force:
        raise QueueBusyError(
            f"Queue {queue!r} has {counts.active} active job(s); pause it and wait for them, or add --force."
        )
    total = counts.pending + counts.active + counts.completed + counts.failed + counts.waiting_children
    if not yes and not typer.confirm(f"Delete all {total} job(s) of {queue}?", default=False):
        raise RefusedError(f"Nothing was deleted from {queue}.")
    run_async(_clear(app, tenant, queue, force=force))
    say(f"Cleared {queue}: deleted {total} job(s).")


async def _counts(app: Conveyor, tenant: str | None, queue: str) -> QueueCounts:
    async with connected(app, tenant) as view:
        return await view.queue(queue).counts()


async def _clear(app: Conveyor, tenant: str | None, queue: str, *, force: bool) -> None:
    async with connected(app, tenant) as view:
        await view.queue(queue).clear(force=force)


@cli_command
def retry(
    queue: QueueArg,
    job_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="A failed job's id.", show_default=False)] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Retry every failed job of the queue.")] = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Retry a failed job (or every failed one) with fresh attempts."""
    if (job_id is None) == (not all_failed):
        raise UsageError("Give either a job ID or --all-failed.")
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    if job_id is None:
        moved = run_async(_retry_all(app, tenant, queue))
        say(f"Retried {moved} failed job(s) of {queue}.")
        return
    run_async(_on_job(app, tenant, queue, job_id, Queue.retry))
    say(f"Retrying job {job_id} of {queue}.")


async def _retry_all(app: Conveyor, tenant: str | None, queue: str) -> int:
    async with connected(app, tenant) as view:
        return await view.queue(queue).retry_all_failed()


@cli_command
def cancel(queue: QueueArg, job_id: JobIdArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Cancel a job: a pending one is removed, an active one stopped (it fails as cancelled)."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    was = run_async(_cancel(app, tenant, queue, job_id))
    if was is JobState.ACTIVE:
        say(f"Asked the worker running job {job_id} to stop; it fails as cancelled, without retries.")
    else:
        say(f"Cancelled job {job_id} of {queue} (it was {was.value}; it is removed).")


async def _cancel(app: Conveyor, tenant: str | None, queue: str, job_id: str) -> JobState:
    async with connected(app, tenant) as view:
        return await view.queue(queue).cancel(job_id)


@cli_command
def promote(queue: QueueArg, job_id: JobIdArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Run a delayed job now."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    run_async(_on_job(app, tenant, queue, job_id, Queue.promote))
    say(f"Promoted job {job_id} of {queue}: it runs as soon as a worker is free.")


@cli_command
def remove(queue: QueueArg, job_id: JobIdArg, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """Delete a job that is not active (cancel an active one instead)."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    run_async(_on_job(app, tenant, queue, job_id, Queue.remove))
    say(f"Removed job {job_id} from {queue}.")


async def _on_job(app: Conveyor, tenant: str | None, queue_name: str, job_id: str, operation: JobOperation) -> None:
    async with connected(app, tenant) as view:
        queue = view.queue(queue_name)
        if await queue.state_of(job_id) is JobState.UNKNOWN:
            raise JobNotFoundError(queue_name, job_id)  # a clear "not found" rather than a script's refusal
        await operation(queue, job_id)
