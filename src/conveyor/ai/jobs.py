"""AI jobs on the `ai-processing` queue: `explain`, `refactor`, `fix` and `generate-summary`, one file each.

A job reads the file, hands it to the configured provider (offline static analysis by default, or an HTTP
model endpoint), stores the result beside the code index and returns it. `register(app)` adds the handlers.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from conveyor.ai.errors import ProviderUnavailableError, SourceUnavailableError, as_rate_limit
from conveyor.ai.http import AnthropicMessagesProvider, OpenAIChatProvider
from conveyor.ai.offline import OfflineProvider
from conveyor.ai.provider import TASKS, AIRequest, Provider
from conveyor.ai.results import ResultStore
from conveyor.ai.settings import AISettings, ProviderName
from conveyor.app import Conveyor, JobContext
from conveyor.indexer.jobs import OpenIndexes
from conveyor.indexer.languages import detect_language
from conveyor.indexer.settings import IndexerSettings
from conveyor.indexer.walker import SNIFF_BYTES, absolute, is_binary
from conveyor.queue.queue import NewJob

QUEUE = "ai-processing"
MAX_SOURCE_BYTES = 1_000_000


class AIFileRequest(BaseModel):
    """Payload of every AI job: the file (`path` or the design's `filePath`), an optional definition to focus
    on, extra instructions for a model, the index whose results table stores the answer, and a provider
    that overrides `CONVEYOR_AI_PROVIDER` for this job."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    path: str = Field(min_length=1, validation_alias=AliasChoices("path", "filePath"))
    symbol: str | None = None
    instructions: str | None = Field(default=None, max_length=4000)
    index: str | None = None
    provider: ProviderName | None = None


def read_source(path: Path, max_bytes: int = MAX_SOURCE_BYTES) -> tuple[str, str]:
    """The file's text and SHA-256, or `SourceUnavailableError` (not retried) when it cannot be processed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceUnavailableError(f"Cannot read {path}: {exc.strerror or exc}. Check the path.") from exc
    if len(data) > max_bytes:
        raise SourceUnavailableError(f"{path} is {len(data)} bytes; AI jobs take files up to {max_bytes} bytes.")
    if is_binary(data[:SNIFF_BYTES]):
        raise SourceUnavailableError(f"{path} is a binary file; AI jobs take source files.")
    return data.decode("utf-8", "replace"), hashlib.sha256(data).hexdigest()


class Providers:
    """The providers of this process, made on first use (so a misconfigured one fails only its jobs)."""

    def __init__(self, settings: AISettings) -> None:
        self.settings = settings
        self._made: dict[str, Provider] = {}
        self._lock = threading.Lock()

    def get(self, name: ProviderName | None = None) -> Provider:
        """The provider called `name` (default: the configured one)."""
        chosen = name or self.settings.provider
        with self._lock:
            if chosen not in self._made:
                self._made[chosen] = self._make(chosen)
            return self._made[chosen]

    def _make(self, name: str) -> Provider:
        settings = self.settings.model_copy(update={"provider": name})
        if name == "openai":
            return OpenAIChatProvider(settings)
        if name == "anthropic":
            return AnthropicMessagesProvider(settings)
        return OfflineProvider()


Handler = Callable[[AIFileRequest, JobContext], Coroutine[Any, Any, dict[str, Any]]]


def declare(app: Conveyor) -> None:
    """Declare the payload model of the `ai-processing` queue's job types (producers validate against it)."""
    for task in TASKS:
        app.job_type(QUEUE, task, payload=AIFileRequest)


def register(
    app: Conveyor, settings: AISettings | None = None, indexer_settings: IndexerSettings | None = None
) -> None:
    """Register `explain`, `refactor`, `fix` and `generate-summary` on the `ai-processing` queue of `app`.

    Settings default to the environment (`AISettings`, `IndexerSettings`); results go to the configured index
    database unless a job names another.
    """
    providers = Providers(settings or AISettings())
    indexes = OpenIndexes(app, indexer_settings)
    stores: dict[Path, ResultStore] = {}

    def store_for(override: str | None) -> ResultStore:
        index = indexes.get(override)
        if index.path not in stores:
            stores[index.path] = ResultStore(index)
        return stores[index.path]

    def handler_for(task: str) -> Handler:
        async def handle(request: AIFileRequest, ctx: JobContext) -> dict[str, Any]:
            path = absolute(request.path)
            source, digest = await asyncio.to_thread(read_source, path)
            ai_request = AIRequest(task, str(path), detect_language(path), source, request.symbol, request.instructions)
            try:
                result = await providers.get(request.provider).run(ai_request)
            except ProviderUnavailableError as exc:
                wait = as_rate_limit(exc)
                if wait is None:
                    raise
                raise wait from exc
            store = await asyncio.to_thread(store_for, request.index)
            await asyncio.to_thread(store.save, result, sha256=digest, symbol=request.symbol, job_id=ctx.job.id)
            return result.to_json()

        handle.__name__ = f"ai_{task.replace('-', '_')}"
        return handle

    for task in TASKS:
        app.handler(QUEUE, task, payload=AIFileRequest)(handler_for(task))


def batch(paths: Sequence[Path], task: str = "generate-summary", **fields: Any) -> list[NewJob]:
    """One job of `task` per file (paths made absolute), ready for `app.add_bulk("ai-processing", …)`."""
    if task not in TASKS:
        raise ValueError(f"unknown AI task {task!r}; use one of {', '.join(TASKS)}")
    return [NewJob(task, {"path": str(absolute(p)), **fields}) for p in paths]
