"""The indexer's jobs on the `indexing` queue: `index-file`, `full-index` (fans out `index-file` children and
waits for them) and `remove-file`. `register(app)` adds their handlers to an application.

Every per-file problem is an outcome (see `conveyor.indexer.outcomes`): skipped files complete their job, and
failures (`unreadable`, `symlink-loop`) fail it at once with a non-retryable error, since running again
would meet the same file. A `full-index` result counts every outcome exactly (`outcomes`), together with the
files the walk skipped and the ones left alone because their size and mtime had not changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from conveyor.app import Conveyor, JobContext
from conveyor.indexer.errors import NotARepositoryError
from conveyor.indexer.fanout import (
    FAILED,
    LOST,
    FanoutProgress,
    FanoutTracker,
    child_job_id,
    fanout_key,
    wait_for_children,
)
from conveyor.indexer.outcomes import FAILURES, INDEXED, UNCHANGED, VANISHED
from conveyor.indexer.settings import IndexerSettings
from conveyor.indexer.store import CodeIndex, IndexOutcome
from conveyor.indexer.walker import RepoFile, absolute, walk_repository
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import NewJob
from conveyor.worker.errors import NonRetryableError

log = logging.getLogger(__name__)

QUEUE = "indexing"
INDEX_FILE, FULL_INDEX, REMOVE_FILE = "index-file", "full-index", "remove-file"
BULK_BATCH = 500  # children added per round trip
SETTLE_ROUNDS = 3  # re-index a file edited while it was being indexed, at most this many times
MAX_REPORTED_FAILURES = 20


class IndexFileRequest(BaseModel):
    """Payload of `index-file`. `path` (or the design's `filePath`) is taken from the worker's directory when
    relative; `index` is the database file (default: the configured one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(min_length=1, validation_alias=AliasChoices("path", "filePath"))
    index: str | None = None
    force: bool = False
    parent: str | None = Field(default=None, description="The full-index job that added this one.")


class FullIndexRequest(BaseModel):
    """Payload of `full-index`: the repository root, the index database, and `force` to re-read every file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    root: str = Field(min_length=1, validation_alias=AliasChoices("root", "path"))
    index: str | None = None
    force: bool = False


class RemoveFileRequest(BaseModel):
    """Payload of `remove-file`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(min_length=1, validation_alias=AliasChoices("path", "filePath"))
    index: str | None = None


@dataclass(frozen=True)
class FullIndexPlan:
    """What a full index has to do: files to (re)index, how many are unchanged, which left the index, and how
    many files the walk skipped, by outcome (`binary`, `symlink`, `unreadable`, …)."""

    root: Path
    changed: list[RepoFile]
    unchanged: int
    removed: list[str]
    skipped: dict[str, int] = field(default_factory=dict)


class OpenIndexes:
    """The index databases this process has open, one `CodeIndex` per file, shared by all handlers."""

    def __init__(self, app: Conveyor, settings: IndexerSettings | None = None) -> None:
        self.app = app
        self.settings = settings or IndexerSettings()
        self._open: dict[Path, CodeIndex] = {}
        self._lock = threading.Lock()

    def path(self, override: str | Path | None = None) -> Path:
        """The database file for a payload's `index` (or the configured default)."""
        return self.settings.index_path(self.app.settings.conveyor_data_dir, override)

    def get(self, override: str | Path | None = None) -> CodeIndex:
        """The open index for a payload's `index` (or the configured default)."""
        path = self.path(override)
        with self._lock:
            if path not in self._open:
                self._open[path] = CodeIndex(path, max_file_bytes=self.settings.conveyor_index_max_file_bytes)
            return self._open[path]

    def close(self) -> None:
        """Close every open database."""
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()


def plan_full_index(index: CodeIndex, root: Path, *, force: bool = False) -> FullIndexPlan:
    """Walk the repository, drop index entries of files that are gone or now ignored, and list the files to
    index: new ones and ones whose size or mtime changed (all of them with `force`). The content hash decides
    in `index-file`; size and mtime only spare enqueuing files that cannot have changed."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise NotARepositoryError(root)
    skipped: Counter[str] = Counter()
    files = list(
        walk_repository(root, max_file_bytes=index.max_file_bytes, skipped=lambda _, why: skipped.update([why]))
    )
    known = index.known_files(root)
    removed = index.prune(root, {str(f.path) for f in files})
    changed = [f for f in files if force or not _same(known.get(str(f.path)), f)]
    return FullIndexPlan(root, changed, len(files) - len(changed), removed, dict(skipped))


def _same(record: Any, found: RepoFile) -> bool:
    return record is not None and record.size == found.size and record.mtime_ns == found.mtime_ns


def index_settled(index: CodeIndex, path: Path, *, force: bool = False) -> IndexOutcome:
    """Index a file and, if it was saved again while being read, once more (so the last save always lands)."""
    outcome = index.index_file(path, force=force)
    for _ in range(SETTLE_ROUNDS):
        try:
            current = path.resolve().stat().st_mtime_ns
        except (OSError, RuntimeError):  # gone, or a symlink loop: the outcome already says so
            current = None
        if outcome.mtime_ns is None or current == outcome.mtime_ns:
            break
        outcome = index.index_file(path)
    return outcome


class IndexingJobs:
    """The handlers of the indexer's jobs, sharing the process's open indexes."""

    def __init__(self, app: Conveyor, indexes: OpenIndexes) -> None:
        self.app = app
        self.indexes = indexes

    def tracker(self, queue: str, parent: str) -> FanoutTracker:
        """The record of a `full-index` job's finished children."""
        return FanoutTracker(self.app.client, fanout_key(self.app.settings.conveyor_prefix, queue, parent))

    async def index_file(self, request: IndexFileRequest, ctx: JobContext) -> dict[str, Any]:
        """`index-file`: index one file; a child of a `full-index` also records how it ended. A file that
        cannot be read fails the job without retries."""
        try:
            index = self.indexes.get(request.index)
            outcome = await asyncio.to_thread(index_settled, index, Path(request.path), force=request.force)
        except Exception:
            if request.parent and ctx.job.attempt >= ctx.job.max_attempts:
                await self.tracker(ctx.job.queue, request.parent).record(ctx.job.id, FAILED)
            raise
        if request.parent:
            await self.tracker(ctx.job.queue, request.parent).record(ctx.job.id, outcome.status)
        if outcome.status in FAILURES:
            raise NonRetryableError(f"{outcome.path} was not indexed: {outcome.status} (retrying would not help)")
        return dataclasses.asdict(outcome)

    async def full_index(self, request: FullIndexRequest, ctx: JobContext) -> dict[str, Any]:
        """`full-index`: plan, fan out one `index-file` per changed file, wait for all, report progress."""
        index = self.indexes.get(request.index)
        plan = await asyncio.to_thread(plan_full_index, index, Path(request.root), force=request.force)
        children = {child_job_id(ctx.job.id, str(f.path)): str(f.path) for f in plan.changed}

        def report(progress: FanoutProgress) -> None:
            ctx.progress(_progress(progress, plan))

        report(FanoutProgress(len(children), 0, 0))
        await add_children(self.app, ctx.job.queue, ctx.job.id, children, index=index.path, force=request.force)
        tracker = self.tracker(ctx.job.queue, ctx.job.id)
        poll_s = self.indexes.settings.conveyor_index_poll_s
        queue = self.app.queue(ctx.job.queue)
        outcomes = await wait_for_children(queue, tracker, children, poll_s=poll_s, report=report, failures=FAILURES)
        await tracker.discard()
        return _result(plan, children, outcomes, index.path)

    async def remove_file(self, request: RemoveFileRequest) -> dict[str, Any]:
        """`remove-file`: take a file out of the index."""
        path = absolute(request.path)
        removed = await asyncio.to_thread(self.indexes.get(request.index).remove, path)
        return {"path": str(path), "removed": removed is not None}


def declare(app: Conveyor) -> None:
    """Declare the payload models of the `indexing` queue's job types (producers validate against them)."""
    app.job_type(QUEUE, INDEX_FILE, payload=IndexFileRequest)
    app.job_type(QUEUE, FULL_INDEX, payload=FullIndexRequest)
    app.job_type(QUEUE, REMOVE_FILE, payload=RemoveFileRequest)


def register(app: Conveyor, settings: IndexerSettings | None = None) -> None:
    """Register `index-file`, `full-index` and `remove-file` on the `indexing` queue of `app`.

    Settings default to the environment (`IndexerSettings`); the handlers share one open database per index
    file for the life of the process.
    """
    if app.queue_settings[QUEUE].concurrency < 2:
        log.warning(
            "the %s queue's concurrency is 1: a full-index job holds that slot while it waits for its children, "
            "which then cannot run. Set INDEXING_QUEUE_CONCURRENCY to 2 or more.",
            QUEUE,
        )
    jobs = IndexingJobs(app, OpenIndexes(app, settings))
    app.handler(QUEUE, INDEX_FILE, payload=IndexFileRequest)(jobs.index_file)
    app.handler(QUEUE, FULL_INDEX, payload=FullIndexRequest)(jobs.full_index)
    app.handler(QUEUE, REMOVE_FILE, payload=RemoveFileRequest)(jobs.remove_file)


def _result(plan: FullIndexPlan, children: dict[str, str], outcomes: dict[str, str], index: Path) -> dict[str, Any]:
    """The full index's result: progress keys, plus `outcomes` counting how every file ended (children by
    their recorded outcome, files the walk skipped by why, and `unchanged` including the ones never enqueued)."""
    ended = Counter(outcomes.get(child, LOST) for child in children)
    failed_outcomes = FAILURES | {FAILED, LOST}
    failed = sorted(path for child, path in children.items() if outcomes.get(child, LOST) in failed_outcomes)
    tallies = Counter(plan.skipped) + ended
    tallies[UNCHANGED] += plan.unchanged
    result: dict[str, Any] = _progress(FanoutProgress(len(children), len(children) - len(failed), len(failed)), plan)
    result.update(
        indexed=ended[INDEXED],
        unchanged=tallies[UNCHANGED],
        vanished=ended[VANISHED],
        outcomes={outcome: n for outcome, n in sorted(tallies.items()) if n},
        root=str(plan.root),
        index=str(index),
        failedFiles=failed[:MAX_REPORTED_FAILURES],
    )
    return result


def _progress(progress: FanoutProgress, plan: FullIndexPlan) -> dict[str, int]:
    return {
        "percent": progress.percent,
        "total": progress.total,
        "done": progress.done,
        "failed": progress.failed,
        "unchanged": plan.unchanged,
        "removed": len(plan.removed),
    }


async def add_children(
    app: Conveyor, queue: str, parent: str, children: dict[str, str], *, index: Path, force: bool
) -> None:
    """Add one `index-file` job per child (child id → path), in batches; existing ids are left as they are."""
    jobs = [
        NewJob(INDEX_FILE, {"path": path, "index": str(index), "parent": parent, "force": force}, JobOptions(job_id=c))
        for c, path in children.items()
    ]
    for start in range(0, len(jobs), BULK_BATCH):
        await app.add_bulk(queue, jobs[start : start + BULK_BATCH])


async def start_full_index(app: Conveyor, root: Path, *, index: Path | None = None, force: bool = False) -> str:
    """Enqueue a `full-index` of a repository (the path is resolved here, for workers elsewhere) and return its
    job id; follow it with `Queue.get_job(id).progress`."""
    data: dict[str, Any] = {"root": str(absolute(root)), "force": force}
    if index is not None:
        data["index"] = str(absolute(index))
    return await app.add(QUEUE, FULL_INDEX, data, priority="high")
