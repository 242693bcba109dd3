"""`embed` jobs on the `indexing` queue: embeddings for the symbols of files just indexed.

Indexing never waits for them: `index-file` and each `index-batch` of a full index enqueue one `embed` job
(low priority) for the files they indexed, and its handler computes the vectors of those files' symbols that
have none of the configured model yet, `CONVEYOR_EMBED_BATCH` symbols per provider call. A job for files
re-indexed meanwhile finds the new symbols (old vectors leave with their symbols). With an empty `paths`, an
`embed` job fills in every symbol of the index that has no vector (`conveyor embed`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from conveyor.app import Conveyor, JobContext
from conveyor.indexer.embedding import Embedder, embedder_from
from conveyor.indexer.indexes import OpenIndexes
from conveyor.indexer.settings import IndexerSettings
from conveyor.indexer.store import CodeIndex, path_key
from conveyor.indexer.vectors import SymbolVectors

log = logging.getLogger(__name__)

EMBED = "embed"
MAX_PATHS = 1000


class EmbedRequest(BaseModel):
    """Payload of `embed`: the index database and the files whose symbols to embed (all missing when empty)."""

    model_config = ConfigDict(extra="forbid")

    index: str | None = None
    paths: list[str] = Field(default_factory=list, max_length=MAX_PATHS)


def embedding_enabled(settings: IndexerSettings) -> bool:
    """True when indexing should enqueue `embed` jobs: a provider is configured and, for the offline one,
    installed (without the `semantic` extra, indexing goes on without embeddings)."""
    provider = settings.conveyor_embed_provider
    return provider == "openai" or (provider == "offline" and importlib.util.find_spec("wordllama") is not None)


async def enqueue_embed(app: Conveyor, settings: IndexerSettings, index: CodeIndex, paths: list[str]) -> None:
    """Add an `embed` job for `paths` of `index` when embeddings are on (nothing to do for no paths)."""
    if not paths or not embedding_enabled(settings):
        return
    for start in range(0, len(paths), MAX_PATHS):
        data = {"index": str(index.path), "paths": paths[start : start + MAX_PATHS]}
        await app.add("indexing", EMBED, data, priority="low", warn_unserved=False)


def embed_missing(index: CodeIndex, embedder: Embedder, paths: list[str], batch: int, ctx: Any = None) -> int:
    """Compute and store the vectors of `paths`' symbols (every file's when empty) that have none of
    `embedder.model`; returns how many were stored. Stops between batches when `ctx` is cancelled."""
    vectors = SymbolVectors.of(index)
    stored = 0
    while True:
        if ctx is not None and ctx.cancelled.is_set():
            break
        pending = vectors.missing(paths, embedder.model, batch)
        if not pending:
            break
        ids = [symbol_id for symbol_id, _ in pending]
        stored += vectors.put(embedder.model, ids, embedder.embed([text for _, text in pending]))
        if len(pending) < batch:
            break
    return stored


class EmbedJobs:
    """The `embed` handler, with the process's embedder built on first use."""

    def __init__(self, indexes: OpenIndexes) -> None:
        self.indexes = indexes
        self._embedder: Embedder | None = None

    def embedder(self) -> Embedder | None:
        """The configured provider, built once per process."""
        if self._embedder is None:
            self._embedder = embedder_from(self.indexes.settings)
        return self._embedder

    async def embed(self, request: EmbedRequest, ctx: JobContext) -> dict[str, Any]:
        """`embed`: vectors for the symbols of `paths` that have none; `{model, embedded}`."""
        embedder = await asyncio.to_thread(self.embedder)
        if embedder is None:
            return {"model": None, "embedded": 0}
        index = self.indexes.get(request.index)
        batch = self.indexes.settings.conveyor_embed_batch
        paths = [path_key(Path(path)) for path in request.paths]  # as stored: resolved
        count = await asyncio.to_thread(embed_missing, index, embedder, paths, batch, ctx)
        return {"model": embedder.model, "embedded": count}
