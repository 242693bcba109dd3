"""The indexer's jobs on the `indexing` queue: `index-file`, `full-index` (a flow of `index-batch` children
and a `full-index-summary`, see `conveyor.indexer.fullindex`), `remove-file` and `embed` (symbol embeddings
for semantic search, enqueued after indexing, see `conveyor.indexer.embedjobs`). `register(app)` adds their
handlers to an application.

Every per-file problem is an outcome (see `conveyor.indexer.outcomes`): skipped files complete their job, and
failures (`unreadable`, `symlink-loop`) fail an `index-file` job at once with a non-retryable error, since
running again would meet the same file. A full index's result counts every outcome exactly (`outcomes`),
together with the files the walk skipped and the ones left alone because their size and mtime had not changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from conveyor.app import Conveyor, JobContext, NonRetryableError
from conveyor.indexer.embedjobs import EMBED, EmbedJobs, EmbedRequest, enqueue_embed
from conveyor.indexer.fullindex import (
    FULL_INDEX_SUMMARY,
    INDEX_BATCH,
    FullIndexJobs,
    FullIndexSummaryRequest,
    IndexBatchRequest,
)
from conveyor.indexer.indexes import OpenIndexes
from conveyor.indexer.outcomes import FAILURES, INDEXED
from conveyor.indexer.planning import FullIndexPlan, index_settled, plan_full_index
from conveyor.indexer.settings import IndexerSettings
from conveyor.indexer.walker import absolute

__all__ = [
    "EMBED",
    "FULL_INDEX",
    "INDEX_FILE",
    "QUEUE",
    "REMOVE_FILE",
    "FullIndexPlan",
    "OpenIndexes",
    "declare",
    "index_settled",
    "plan_full_index",
    "register",
    "start_full_index",
]

log = logging.getLogger(__name__)

QUEUE = "indexing"
INDEX_FILE, FULL_INDEX, REMOVE_FILE = "index-file", "full-index", "remove-file"


class IndexFileRequest(BaseModel):
    """Payload of `index-file`. `path` (or the design's `filePath`) is taken from the worker's directory when
    relative; `index` is the database file (default: the configured one)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(min_length=1, validation_alias=AliasChoices("path", "filePath"))
    index: str | None = None
    force: bool = False
    parent: str | None = Field(
        default=None, description="Set by earlier versions' full-index on its children; accepted and ignored."
    )


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


class IndexingJobs:
    """The handlers of the indexer's jobs, sharing the process's open indexes."""

    def __init__(self, app: Conveyor, indexes: OpenIndexes) -> None:
        self.app = app
        self.indexes = indexes
        self.full = FullIndexJobs(app, indexes)

    async def index_file(self, request: IndexFileRequest) -> dict[str, Any]:
        """`index-file`: index one file. A file that cannot be read fails the job without retries."""
        index = self.indexes.get(request.index)
        outcome = await asyncio.to_thread(index_settled, index, Path(request.path), force=request.force)
        if outcome.status in FAILURES:
            raise NonRetryableError(f"{outcome.path} was not indexed: {outcome.status} (retrying would not help)")
        if outcome.status == INDEXED:
            await enqueue_embed(self.app, self.indexes.settings, index, [outcome.path])
        return dataclasses.asdict(outcome)

    async def full_index(self, request: FullIndexRequest, ctx: JobContext) -> dict[str, Any]:
        """`full-index`: plan and add the flow of batches (see `conveyor.indexer.fullindex`)."""
        return await self.full.full_index(request.root, request.index, request.force, ctx)

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
    app.job_type(QUEUE, INDEX_BATCH, payload=IndexBatchRequest)
    app.job_type(QUEUE, FULL_INDEX_SUMMARY, payload=FullIndexSummaryRequest)
    app.job_type(QUEUE, EMBED, payload=EmbedRequest)


def register(app: Conveyor, settings: IndexerSettings | None = None) -> None:
    """Register `index-file`, `full-index`, `index-batch`, `full-index-summary`, `remove-file` and `embed` on the
    `indexing` queue of `app`.

    Settings default to the environment (`IndexerSettings`); the handlers share one open database per index
    file for the life of the process.
    """
    indexes = OpenIndexes(app, settings)
    jobs = IndexingJobs(app, indexes)
    app.handler(QUEUE, INDEX_FILE, payload=IndexFileRequest)(jobs.index_file)
    app.handler(QUEUE, FULL_INDEX, payload=FullIndexRequest)(jobs.full_index)
    app.handler(QUEUE, INDEX_BATCH, payload=IndexBatchRequest)(jobs.full.index_batch)
    app.handler(QUEUE, FULL_INDEX_SUMMARY, payload=FullIndexSummaryRequest)(jobs.full.summary)
    app.handler(QUEUE, REMOVE_FILE, payload=RemoveFileRequest)(jobs.remove_file)
    app.handler(QUEUE, EMBED, payload=EmbedRequest)(EmbedJobs(indexes).embed)


async def start_full_index(app: Conveyor, root: Path, *, index: Path | None = None, force: bool = False) -> str:
    """Enqueue a `full-index` of a repository (the path is resolved here, for workers elsewhere) and return its
    job id; wait for its result with `conveyor.indexer.fullindex.follow_full_index`."""
    data: dict[str, Any] = {"root": str(absolute(root)), "force": force}
    if index is not None:
        data["index"] = str(absolute(index))
    return await app.add(QUEUE, FULL_INDEX, data, priority="high")
