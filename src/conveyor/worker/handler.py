"""What the runtime needs to know about a job handler."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from conveyor.worker.batching import Batch, Batcher
from conveyor.worker.sandbox import Sandbox


@dataclass(frozen=True)
class Handler:
    """A registered handler: the function, whether it is a coroutine function, and its payload model."""

    queue: str
    job_type: str
    func: Callable[..., Any]
    payload_model: type[BaseModel] | None = None
    sandbox: Sandbox | None = None  # run each attempt in a child process with these limits
    batch: Batch | None = None  # receive jobs in lists (see `conveyor.worker.batching`)

    @functools.cached_property
    def is_async(self) -> bool:
        """Coroutine functions run on the event loop; plain functions run in the worker's thread pool."""
        return inspect.iscoroutinefunction(self.func)

    @functools.cached_property
    def takes_context(self) -> bool:
        """True when the function accepts a second argument, the `JobContext` (read once, not per job)."""
        params = [
            p
            for p in inspect.signature(self.func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        return len(params) >= 2


HandlerLookup = Callable[[str, str], Handler | None]


class Batchers:
    """The batch collectors of one runner: one per batch handler's job type, made when its first job runs."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self._batchers: dict[str, Batcher] = {}

    def of(self, handler: Handler) -> Batcher | None:
        """The batch collector of a batch handler, else None."""
        if handler.batch is None:
            return None
        batcher = self._batchers.get(handler.job_type)
        if batcher is None:
            batcher = Batcher(handler.func, handler.is_async, handler.takes_context, handler.batch, self.executor)
            self._batchers[handler.job_type] = batcher
        return batcher
