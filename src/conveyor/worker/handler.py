"""What the runtime needs to know about a job handler."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from conveyor.worker.batching import Batch
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
