"""`conveyor job`, `conveyor jobs` and `conveyor stats`: read jobs, queues and live workers."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.live import Live

from conveyor.app import Conveyor
from conveyor.cli.errors import cli_command, run_async
from conveyor.cli.options import AppOption, JobIdArg, JsonOption, QueueArg, TenantOption, open_app
from conveyor.cli.output import print_json, stdout
from conveyor.cli.render import render_job, render_jobs, render_stats
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.job import Job, JobState
from conveyor.queue.queue import QueueCounts
from conveyor.worker.registry import WorkerInfo


class ListedState(StrEnum):
    """The states `conveyor jobs` can list. `waiting` is every job waiting to run; `prioritized` (those with a
    priority) and `paused` (every waiting job of a paused queue) pick a part of them."""

    ACTIVE = "active"
    WAITING = "waiting"
    PAUSED = "paused"
    PRIORITIZED = "prioritized"
    DELAYED = "delayed"
    WAITING_CHILDREN = "waiting-children"
    FAILED = "failed"
    COMPLETED = "completed"


def _distinct(states: Sequence[ListedState], paused: bool) -> list[ListedState]:
    """The states without the parts of waiting that another chosen state already lists, so no job shows twice."""
    chosen = list(dict.fromkeys(states))
    covered: set[ListedState] = set()
    if ListedState.WAITING in chosen:
        covered |= {ListedState.PAUSED, ListedState.PRIORITIZED}
    elif paused and ListedState.PAUSED in chosen:
        covered.add(ListedState.PRIORITIZED)
    return [state for state in chosen if state not in covered]


@cli_command
def job(
    queue: QueueArg,
    job_id: JobIdArg,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Show one job: state, data, progress, attempts, result or error, history, logs."""
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    found = run_async(_get_job(app, queue, job_id, tenant))
    if as_json:
        print_json(found)
    else:
        stdout().print(render_job(found))


async def _get_job(app: Conveyor, queue: str, job_id: str, tenant: str | None) -> Job:
    async with connected(app, tenant) as view:
        return await view.queue(queue).get_job(job_id)


@cli_command
def jobs(
    queue: QueueArg,
    state: Annotated[
        list[ListedState] | None,
        typer.Option(
            "--state",
            "-s",
            help="Only this state (repeatable; waiting is every job waiting to run). Default: all.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many jobs.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many jobs first.")] = 0,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """List a queue's jobs.

    Active first, then pending ones (oldest first), then failed and completed ones (newest first).
    """
    app = open_app(app_spec, queue)
    check_tenant(tenant)
    states = list(state or ListedState)
    found = run_async(_list_jobs(app, queue, states, offset, limit, tenant))
    if as_json:
        print_json(found)
    else:
        stdout().print(render_jobs(queue, found))


async def _list_jobs(
    app: Conveyor, queue_name: str, states: Sequence[ListedState], offset: int, limit: int, tenant: str | None
) -> list[Job]:
    """One page over the concatenation of the states' job lists."""
    async with connected(app, tenant) as view:
        queue = view.queue(queue_name)
        page: list[Job] = []
        for state in _distinct(states, await queue.is_paused()):
            size = await queue.count_of(JobState(state.value))
            if offset >= size:
                offset -= size
                continue
            page += await queue.jobs(JobState(state.value), offset, min(limit - len(page), size - offset))
            offset = 0
            if len(page) >= limit:
                break
        return page


Snapshot = tuple[dict[str, QueueCounts], list[WorkerInfo]]


@cli_command
def stats(
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes with --watch.")] = 1.0,
    as_json: JsonOption = False,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Show every queue's job counts and paused flag, and the live workers (of one tenant with --tenant).

    With --json: one JSON document (with --watch, one line per refresh).
    """
    app = open_app(app_spec)
    check_tenant(tenant)
    if watch:
        run_async(_watch(app, interval, as_json, tenant))
        return
    counts, workers = run_async(_once(app, tenant))
    _show(counts, workers, as_json)


def _show(counts: dict[str, QueueCounts], workers: list[WorkerInfo], as_json: bool) -> None:
    if as_json:
        print_json(_stats_json(counts, workers))
    else:
        stdout().print(render_stats(counts, workers))


def _stats_json(counts: dict[str, QueueCounts], workers: list[WorkerInfo]) -> dict[str, Any]:
    return {"queues": counts, "workers": workers, "at": datetime.now(UTC)}


async def _snapshot(app: Conveyor) -> Snapshot:
    names = app.queue_names
    counts = await asyncio.gather(*(app.queue(name).counts() for name in names))
    return dict(zip(names, counts, strict=True)), await app.workers()


async def _once(app: Conveyor, tenant: str | None) -> Snapshot:
    async with connected(app, tenant) as view:
        return await _snapshot(view)


async def _watch(app: Conveyor, interval: float, as_json: bool, tenant: str | None) -> None:
    # Ctrl-C and SIGTERM end the watch through the loop, so an embedded Redis started here is stopped too.
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with connected(app, tenant) as view:
        if as_json:
            await _repeat(view, interval, stop, lambda snap: print_json(_stats_json(*snap), indent=None))
            return
        with Live(render_stats(*await _snapshot(view)), console=stdout(), auto_refresh=False) as live:
            await _repeat(view, interval, stop, lambda snap: live.update(render_stats(*snap), refresh=True))


async def _repeat(app: Conveyor, interval: float, stop: asyncio.Event, show: Callable[[Snapshot], None]) -> None:
    while not stop.is_set():
        show(await _snapshot(app))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
