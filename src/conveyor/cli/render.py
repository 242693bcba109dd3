"""Rich views of jobs, queues and workers for the terminal."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from conveyor.cli.output import ago, when
from conveyor.queue.job import Job, JobState
from conveyor.queue.queue import QueueCounts
from conveyor.worker.registry import WorkerInfo

STATE_STYLES = {
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.ACTIVE: "cyan",
    JobState.DELAYED: "yellow",
}
PREVIEW_CHARS = 60


def _state(state: JobState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def _json_block(value: Any) -> Syntax:
    return Syntax(json.dumps(value, indent=2, ensure_ascii=False, default=str), "json", word_wrap=True)


def render_job(job: Job) -> RenderableType:
    """Everything about one job: summary, payload, result or error, retry history with stacks, logs."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    attempts = f"{job.attempts_made} of {job.max_attempts} made ({job.attempts_started} started)"
    rows: list[tuple[str, Any]] = [
        ("State", _state(job.state)),
        ("Queue / type", f"{job.queue} / {job.type}"),
        ("Priority", str(job.priority)),
        ("Attempts", attempts),
        ("Progress", json.dumps(job.progress, default=str)),
        ("Created", when(job.created_at, precise=True)),
        ("Delayed until", when(job.delay_until, precise=True)),
        ("Started", when(job.processed_at, precise=True)),
        ("Finished", when(job.finished_at, precise=True)),
        ("Worker", job.worker or "-"),
    ]
    for label, value in rows:
        summary.add_row(label, value if isinstance(value, Text) else Text(value))
    parts: list[RenderableType] = [
        Panel(summary, title=f"Job {escape(job.id)}", title_align="left"),
        Panel(_json_block(job.data), title="Data", title_align="left"),
    ]
    if job.state is JobState.COMPLETED:
        parts.append(Panel(_json_block(job.result), title="Result", title_align="left", border_style="green"))
    if job.failed_reason:
        parts.append(Panel(Text(job.failed_reason), title="Error", title_align="left", border_style="red"))
    for record in job.history:
        at = when(record.failed_at, precise=True) if record.failed_at else "(time not recorded by BullMQ)"
        title = f"Attempt {record.attempt} failed {at} on {escape(record.worker or '?')}"
        body = Group(Text(record.error, style="red"), Text(record.stacktrace.rstrip(), style="dim"))
        parts.append(Panel(body, title=title, title_align="left", border_style="red"))
    if job.logs:
        parts.append(Panel(Text("\n".join(job.logs)), title="Logs", title_align="left"))
    return Group(*parts)


def _outcome(job: Job) -> str:
    text = job.failed_reason or ("" if job.result is None else json.dumps(job.result, default=str))
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def render_jobs(queue: str, jobs: Sequence[Job]) -> RenderableType:
    """A table of jobs: id, type, state, attempts, times, and the result or error in short."""
    table = Table(title=f"Jobs of {escape(queue)}", title_justify="left")
    for column in ("Id", "Type", "State", "Attempts", "Created", "Finished", "Result / error"):
        table.add_column(column, no_wrap=column in ("Id", "State"))
    for job in jobs:
        table.add_row(
            Text(job.id),
            Text(job.type),
            _state(job.state),
            f"{job.attempts_made}/{job.max_attempts}",
            when(job.created_at),
            when(job.finished_at),
            Text(_outcome(job)),
        )
    if not jobs:
        table.caption = "no jobs"
    return table


def render_queues(counts: Mapping[str, QueueCounts]) -> Table:
    """Every queue's job counts and paused flag."""
    table = Table(title="Queues", title_justify="left")
    table.add_column("Queue", style="bold", no_wrap=True)
    for column in ("Waiting", "Delayed", "Active", "Completed", "Failed"):
        table.add_column(column, justify="right")
    table.add_column("Paused")
    for name, c in counts.items():
        paused = Text("paused", style="yellow") if c.paused else Text("no")
        failed = Text(str(c.failed), style="red" if c.failed else "")
        cells = (c.waiting, c.delayed, c.active, c.completed)
        table.add_row(Text(name), *(str(n) for n in cells), failed, paused)
    return table


def render_workers(workers: Sequence[WorkerInfo]) -> Table:
    """The live workers: who they are, what they serve and how busy they are, when they started and last
    reported. Fits 80 columns without cutting a worker's name: long names wrap, and the host and pid get a
    line of their own only when the name does not already start with them (names are `host:pid:id` unless set).
    """
    table = Table(title="Live workers", title_justify="left")
    # No min_width: rich then crops the last columns instead of wrapping the others.
    table.add_column("Worker", overflow="fold")
    table.add_column("Queues", overflow="fold")
    table.add_column("Processed", justify="right")
    table.add_column("Started")
    table.add_column("Last beat")
    for worker in workers:
        name = Text(worker.name)
        if worker.runtime != "conveyor":  # a Node BullMQ worker: no pid, no counts
            name.append(" (Node BullMQ)", style="cyan")
            name.append(f"\n{worker.host}", style="dim")
        elif not worker.name.startswith(f"{worker.host}:{worker.pid}:"):
            name.append(f"\n{worker.host} pid {worker.pid}", style="dim")
        queues = "\n".join(f"{queue} {worker.active.get(queue, 0)}/{n}" for queue, n in worker.queues.items())
        table.add_row(name, Text(queues), str(worker.processed), ago(worker.started_at), ago(worker.last_beat))
    table.caption = "Queues: active jobs / slots per queue" if workers else "no live workers"
    return table


def render_stats(counts: Mapping[str, QueueCounts], workers: Sequence[WorkerInfo]) -> RenderableType:
    """The `conveyor stats` view."""
    return Group(render_queues(counts), Text(""), render_workers(workers))
