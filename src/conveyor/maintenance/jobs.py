"""Background tasks on the `background` queue: `cleanup-temp-files`, `optimize-index` and `remove-old-jobs`,
each optionally repeating (`every_ms`). `register(app)` adds the handlers."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.app import Conveyor, JobContext
from conveyor.indexer.jobs import OpenIndexes
from conveyor.indexer.settings import IndexerSettings
from conveyor.maintenance.cleanup import cleanup_temp_files
from conveyor.maintenance.finished_jobs import remove_finished_jobs
from conveyor.maintenance.schedule import QUEUE, schedule_next
from conveyor.maintenance.settings import MaintenanceSettings
from conveyor.queue.job import JobState

log = logging.getLogger(__name__)
FinishedState = Literal["completed", "failed"]
FINISHED: tuple[FinishedState, ...] = ("completed", "failed")


class Repeating(BaseModel):
    """`every_ms`: when set, the task adds its next run this long after it ends."""

    model_config = ConfigDict(extra="forbid")

    every_ms: int | None = Field(default=None, ge=1000)


class CleanupRequest(Repeating):
    """Delete files matching `pattern` older than `older_than_hours` in `directory` (relative to, and never
    outside, `CONVEYOR_CLEANUP_ROOT`; default: the root itself)."""

    # The design note's form, `data: {delay: 86400000}`: run this many ms after it is added (the job's delay).
    DELAY_FIELD: ClassVar[str] = "delay"

    directory: str | None = None
    pattern: str = "*"
    older_than_hours: float = Field(default=24.0, ge=0)
    dry_run: bool = False
    delay: int | None = Field(default=None, ge=0, description="ms until it runs; the job option delay_ms wins")


class OptimizeIndexRequest(Repeating):
    """Drop entries of vanished files, merge FTS segments, and with `vacuum` rewrite the database file."""

    index: str | None = None
    vacuum: bool = True


class RemoveOldJobsRequest(Repeating):
    """Remove completed and/or failed jobs older than `older_than_hours` (default `CONVEYOR_JOB_RETENTION_HOURS`)
    from the given queues (default: all)."""

    queues: list[str] | None = None
    states: list[FinishedState] = Field(default_factory=lambda: list(FINISHED))
    older_than_hours: float | None = Field(default=None, gt=0)


def _repeating(
    app: Conveyor, job_type: str, work: Callable[[Any, JobContext], Awaitable[dict[str, Any]]]
) -> Callable[[Any, JobContext], Awaitable[dict[str, Any]]]:
    """Wrap a task so that, when it repeats, its next run is added after every attempt's end."""

    async def run(request: Any, ctx: JobContext) -> dict[str, Any]:
        try:
            return await work(request, ctx)
        finally:
            if request.every_ms:
                data = request.model_dump(mode="json")
                await schedule_next(app, job_type, data, ctx.job.id, request.every_ms)

    run.__name__ = work.__name__
    return run


PAYLOADS: dict[str, type[BaseModel]] = {
    "cleanup-temp-files": CleanupRequest,
    "optimize-index": OptimizeIndexRequest,
    "remove-old-jobs": RemoveOldJobsRequest,
}


def declare(app: Conveyor) -> None:
    """Declare the payload models of the `background` queue's job types (producers validate against them)."""
    for job_type, model in PAYLOADS.items():
        app.job_type(QUEUE, job_type, payload=model)


def register(
    app: Conveyor, settings: MaintenanceSettings | None = None, indexer_settings: IndexerSettings | None = None
) -> None:
    """Register `cleanup-temp-files`, `optimize-index` and `remove-old-jobs` on the `background` queue."""
    settings = settings or MaintenanceSettings()
    indexes = OpenIndexes(app, indexer_settings)
    root = settings.cleanup_root(app.settings.conveyor_data_dir)

    async def cleanup(request: CleanupRequest, ctx: JobContext) -> dict[str, Any]:
        report = await asyncio.to_thread(
            cleanup_temp_files, root, request.directory, request.pattern, request.older_than_hours * 3600,
            now=time.time(), dry_run=request.dry_run,
        )  # fmt: skip
        return dataclasses.asdict(report)

    async def optimize(request: OptimizeIndexRequest, ctx: JobContext) -> dict[str, Any]:
        index = indexes.get(request.index)
        gone = await asyncio.to_thread(index.prune_missing)
        stats = await asyncio.to_thread(index.optimize, vacuum=request.vacuum)
        return {"index": str(index.path), "pruned": len(gone), **dataclasses.asdict(stats)}

    async def remove_old(request: RemoveOldJobsRequest, ctx: JobContext) -> dict[str, Any]:
        hours = request.older_than_hours or settings.conveyor_job_retention_hours
        now_ms = int(time.time() * 1000)
        removed: dict[str, int] = {}
        for name in request.queues or app.queue_names:
            for state in request.states:
                count = await remove_finished_jobs(
                    app.queue(name), JobState(state), older_than_ms=int(hours * 3_600_000), now_ms=now_ms
                )
                removed[f"{name}/{state}"] = count
        return {"removed": removed, "older_than_hours": hours}

    for job_type, work in (
        ("cleanup-temp-files", cleanup),
        ("optimize-index", optimize),
        ("remove-old-jobs", remove_old),
    ):
        app.handler(QUEUE, job_type, payload=PAYLOADS[job_type])(_repeating(app, job_type, work))
