"""`full-index` on BullMQ flows: no job waits for others, and every file's outcome is counted exactly.

A `full-index` job plans (walks the repository, drops entries of files that are gone or ignored, lists the
files whose size or mtime changed) and adds one flow: a `full-index-summary` parent, waiting in
`waiting-children`, with one `index-batch` child per batch of files. It then completes, its result naming the
summary job (`summaryJob`). Each batch indexes its files and returns how each ended, by outcome; when the last
batch is done, BullMQ's `moveToFinished` moves the summary to `wait`, and its handler adds the batches' results
up into the full index's result. No worker slot is held while the batches run, and nothing polls.

A batch that fails for good (an unexpected error three times, not a file problem: those are outcomes) does not
stop the summary (`on_failure=ignore`); its files count as `lost`. Ids derive from the `full-index` job's id,
so a retried `full-index` adds nothing twice.

`follow_full_index` is how a caller waits for the whole of it (the CLI, the benchmark): it follows the
`full-index` job, then its summary, reporting the files of the completed batches as progress.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.app import Conveyor, JobContext
from conveyor.indexer.embedjobs import enqueue_embed
from conveyor.indexer.indexes import OpenIndexes
from conveyor.indexer.outcomes import FAILURES, INDEXED, UNCHANGED, VANISHED
from conveyor.indexer.planning import FullIndexPlan, index_settled, plan_full_index
from conveyor.queue.flows import MAX_FLOW_JOBS, ChildJob, FailurePolicy, FlowJob, Flows
from conveyor.queue.job import Job, JobState
from conveyor.queue.options import JobOptions

log = logging.getLogger(__name__)

INDEX_BATCH, FULL_INDEX_SUMMARY = "index-batch", "full-index-summary"
BATCH_FILES = 100  # files per batch, unless there are so many that the flow would exceed MAX_FLOW_JOBS
BATCH_BYTES = 8_000_000  # and at most this much source per batch, so one batch stays short
MAX_REPORTED_FAILURES = 20
ERROR, LOST = "error", "lost"  # a file whose indexing raised; files of a batch that failed for good
FAILED_OUTCOMES = FAILURES | {ERROR, LOST}


class IndexBatchRequest(BaseModel):
    """Payload of `index-batch`: files to index (absolute paths), the index database, `force`."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1)
    index: str | None = None
    force: bool = False


class FullIndexSummaryRequest(BaseModel):
    """Payload of `full-index-summary`: what the plan found, and how many files each batch holds."""

    model_config = ConfigDict(extra="forbid")

    root: str
    index: str
    unchanged: int = 0
    removed: int = 0
    skipped: dict[str, int] = Field(default_factory=dict)
    batches: dict[str, int] = Field(default_factory=dict)


def batches_of(sizes: list[tuple[str, int]], *, max_batches: int = MAX_FLOW_JOBS - 1) -> list[list[str]]:
    """Files (path, size) cut into batches of at most `BATCH_FILES` files and `BATCH_BYTES` bytes, or, when
    that would make more than `max_batches`, into `max_batches` batches of equal file counts."""
    cut: list[list[str]] = [[]]
    weight = 0
    for path, size in sizes:
        if cut[-1] and (len(cut[-1]) >= BATCH_FILES or weight + size > BATCH_BYTES):
            cut.append([])
            weight = 0
        cut[-1].append(path)
        weight += size
    if len(cut) <= max_batches:
        return [batch for batch in cut if batch]
    per_batch = -(-len(sizes) // max_batches)
    return [[path for path, _ in sizes[i : i + per_batch]] for i in range(0, len(sizes), per_batch)]


def summary_job_id(full_index_id: str) -> str:
    """The id of a full index's summary job."""
    return f"{full_index_id}-summary"


def summary_flow(queue: str, job_id: str, plan: FullIndexPlan, index: Path, force: bool) -> FlowJob:
    """The flow of a full index: the summary job with one `index-batch` child per batch."""
    batches = batches_of([(str(f.path), f.size) for f in plan.changed])
    children = [
        FlowJob(queue, INDEX_BATCH, {"paths": paths, "index": str(index), "force": force},
                JobOptions(job_id=f"{job_id}-b{n}"), on_failure=FailurePolicy.IGNORE)
        for n, paths in enumerate(batches)
    ]  # fmt: skip
    summary = FullIndexSummaryRequest(
        root=str(plan.root),
        index=str(index),
        unchanged=plan.unchanged,
        removed=len(plan.removed),
        skipped=plan.skipped,
        batches={child.options.job_id or "": len(paths) for child, paths in zip(children, batches, strict=True)},
    )
    options = JobOptions(job_id=summary_job_id(job_id))
    return FlowJob(queue, FULL_INDEX_SUMMARY, summary.model_dump(), options, children=children)


def full_index_result(
    summary: FullIndexSummaryRequest, tallies: Counter[str], failed_files: list[str]
) -> dict[str, Any]:
    """The result of a full index: `outcomes` counts every file by how it ended (batches' files by their
    outcome, files the walk skipped by why, and `unchanged` including files never enqueued), with the totals
    of earlier versions (`total`, `done`, `failed`, `percent`, `removed`)."""
    outcomes = Counter(summary.skipped) + tallies
    outcomes[UNCHANGED] += summary.unchanged
    total = sum(summary.batches.values())
    failed = sum(tallies[outcome] for outcome in FAILED_OUTCOMES)
    return {
        "percent": 100,
        "total": total,
        "done": total - failed,
        "failed": failed,
        "indexed": tallies[INDEXED],
        "unchanged": outcomes[UNCHANGED],
        "vanished": tallies[VANISHED],
        "removed": summary.removed,
        "outcomes": {outcome: n for outcome, n in sorted(outcomes.items()) if n},
        "root": summary.root,
        "index": summary.index,
        "failedFiles": sorted(failed_files)[:MAX_REPORTED_FAILURES],
    }


def add_up(summary: FullIndexSummaryRequest, children: list[ChildJob]) -> dict[str, Any]:
    """The full index's result from its batches' results (a failed batch's files count as `lost`)."""
    tallies: Counter[str] = Counter()
    failed_files: list[str] = []
    for child in children:
        result = child.result if child.status == "completed" and isinstance(child.result, dict) else None
        if result is None:
            tallies[LOST] += summary.batches.get(child.job_id, 0)
            continue
        tallies.update(result.get("outcomes") or {})
        failed_files.extend(result.get("failedFiles") or [])
    return full_index_result(summary, tallies, failed_files)


class FullIndexJobs:
    """The handlers of `full-index`, `index-batch` and `full-index-summary`."""

    def __init__(self, app: Conveyor, indexes: OpenIndexes) -> None:
        self.app = app
        self.indexes = indexes

    async def full_index(self, root: str, index_override: str | None, force: bool, ctx: JobContext) -> dict[str, Any]:
        """Plan, then add the flow of batches and their summary (or, with nothing to index, the result)."""
        added = await self._added(ctx.job.queue, ctx.job.id)
        if added is not None:  # a rerun of a full index whose flow exists: the same flow, not a second one
            return added
        index = self.indexes.get(index_override)
        plan = await asyncio.to_thread(plan_full_index, index, Path(root), force=force)
        if not plan.changed:
            summary = FullIndexSummaryRequest(
                root=str(plan.root), index=str(index.path), unchanged=plan.unchanged, removed=len(plan.removed),
                skipped=plan.skipped,
            )  # fmt: skip
            return {**full_index_result(summary, Counter(), []), "summaryJob": None}
        flow = summary_flow(ctx.job.queue, ctx.job.id, plan, index.path, force)
        await Flows.of(self.app).add(flow)
        planned = {"total": len(plan.changed), "batches": len(flow.children), "unchanged": plan.unchanged}
        return {**planned, "removed": len(plan.removed), "root": str(plan.root), "index": str(index.path),
                "summaryJob": flow.options.job_id}  # fmt: skip

    async def _added(self, queue_name: str, job_id: str) -> dict[str, Any] | None:
        queue = self.app.queue(queue_name)
        summary_id = summary_job_id(job_id)
        if await queue.state_of(summary_id) is JobState.UNKNOWN:
            return None
        summary = FullIndexSummaryRequest.model_validate((await queue.get_job(summary_id)).data)
        total = sum(summary.batches.values())
        planned = {"total": total, "batches": len(summary.batches), "unchanged": summary.unchanged}
        return {**planned, "removed": summary.removed, "root": summary.root, "index": summary.index,
                "summaryJob": summary_id}  # fmt: skip

    async def index_batch(self, request: IndexBatchRequest, ctx: JobContext) -> dict[str, Any]:
        """`index-batch`: index each file; returns `{files, outcomes, failedFiles}`. A database error fails
        the batch (retried: files done already come out `unchanged`); any other error is that file's outcome."""
        index = self.indexes.get(request.index)
        outcomes: Counter[str] = Counter()
        failed: list[str] = []
        indexed: list[str] = []
        for path in request.paths:
            if ctx.cancelled.is_set():
                raise asyncio.CancelledError
            status = await asyncio.to_thread(_index_one, index, Path(path), request.force)
            outcomes[status] += 1
            if status in FAILED_OUTCOMES:
                failed.append(path)
            elif status == INDEXED:
                indexed.append(path)
        await enqueue_embed(self.app, self.indexes.settings, index, indexed)
        return {"files": len(request.paths), "outcomes": dict(outcomes), "failedFiles": failed}

    async def summary(self, request: FullIndexSummaryRequest, ctx: JobContext) -> dict[str, Any]:
        """`full-index-summary`: add up the batches' results."""
        children = await Flows.of(self.app).children(ctx.job.queue, ctx.job.id)
        return add_up(request, children)


def _index_one(index: Any, path: Path, force: bool) -> str:
    try:
        return index_settled(index, path, force=force).status
    except sqlite3.Error:
        raise
    except Exception:  # a parser or decoder bug on one file must not cost the other files of the batch
        log.exception("indexing %s failed", path)
        return ERROR


@dataclass(frozen=True)
class FullIndexStatus:
    """Where a full index is: the job that says so (the `full-index` job, then its summary), whether it has
    ended, and how many of its files are done (batches completed) out of how many."""

    job: Job
    ended: bool
    done: int = 0
    total: int | None = None


def _finished(job: Job) -> bool:
    """Completed or failed, with what it stored in that step (`Queue.get_job` reads the hash and the state in
    two round trips, so a job seen finishing may come without its result or failure reason)."""
    return job.state in (JobState.COMPLETED, JobState.FAILED) and job.finished_at is not None


async def full_index_status(app: Conveyor, queue_name: str, job_id: str) -> FullIndexStatus:
    """The status of the full index started as `job_id`."""
    queue = app.queue(queue_name)
    job = await queue.get_job(job_id)
    if not _finished(job) or job.state is JobState.FAILED:
        return FullIndexStatus(job, _finished(job))
    result = job.result if isinstance(job.result, dict) else {}
    total = int(result.get("total", 0))
    summary_id = result.get("summaryJob")
    if not summary_id:
        return FullIndexStatus(job, True, total, total)
    summary = await queue.get_job(str(summary_id))
    if _finished(summary):
        return FullIndexStatus(summary, True, total, total)
    children = await Flows.of(app).children(queue_name, str(summary_id))
    done = sum(
        int(c.result.get("files", 0)) for c in children if c.status == "completed" and isinstance(c.result, dict)
    )
    return FullIndexStatus(summary, False, done, total)


async def follow_full_index(
    app: Conveyor,
    queue_name: str,
    job_id: str,
    *,
    poll_s: float = 0.2,
    report: Callable[[FullIndexStatus], None] | None = None,
) -> Job:
    """Wait until the full index started as `job_id` has ended; returns the job holding its result (the
    summary, or the `full-index` job itself when it had nothing to index or failed)."""
    while True:
        status = await full_index_status(app, queue_name, job_id)
        if report is not None:
            report(status)
        if status.ended:
            return status.job
        await asyncio.sleep(poll_s)
