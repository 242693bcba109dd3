"""Batch handlers: jobs of one type that run at the same time in one worker are handed to the handler together.

A batch handler takes a list of payloads (and a list of contexts, if it takes a second argument) and returns a
list of results in the same order; an `Exception` instance in that list fails just that job, whose retry policy
then applies on its own. Raising fails every job of the batch. A batch closes when `max_size` jobs are in, or
`max_wait_ms` after its first job; each job still holds a worker slot, so give the queue a concurrency of at
least `max_size`.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from conveyor.worker.context import JobContext
from conveyor.worker.errors import JobFailureError


@dataclass(frozen=True)
class Batch:
    """How a batch handler's batches are formed."""

    max_size: int = 10
    max_wait_ms: int = 50


class BatchResultError(JobFailureError):
    """A batch handler returned something other than one result per job."""


@dataclass
class _Item:
    payload: Any
    ctx: JobContext
    future: asyncio.Future[Any]


class Batcher:
    """Collects the jobs of one batch handler in one worker and runs them together."""

    def __init__(self, func: Any, is_async: bool, takes_context: bool, batch: Batch, executor: Executor) -> None:
        self.func = func
        self.is_async = is_async
        self.takes_context = takes_context
        self.batch = batch
        self.executor = executor
        self._items: list[_Item] = []
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, payload: Any, ctx: JobContext) -> Any:
        """Add one job to the open batch and wait for its own result (or its own error)."""
        loop = asyncio.get_running_loop()
        item = _Item(payload, ctx, loop.create_future())
        self._items.append(item)
        if len(self._items) >= self.batch.max_size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.batch.max_wait_ms / 1000, self._flush)
        try:
            return await item.future
        except asyncio.CancelledError:
            if item in self._items:  # not sent yet: leave the batch
                self._items.remove(item)
            raise

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, self._items = self._items, []
        if items:
            task = asyncio.create_task(self._run(items))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, items: list[_Item]) -> None:
        args: tuple[Any, ...] = ([i.payload for i in items],)
        if self.takes_context:
            args = (*args, [i.ctx for i in items])
        try:
            if self.is_async:
                results = await self.func(*args)
            else:
                results = await asyncio.get_running_loop().run_in_executor(
                    self.executor, functools.partial(self.func, *args)
                )
            if not isinstance(results, list) or len(results) != len(items):
                raise BatchResultError(f"batch handler must return a list of {len(items)} results")
        except Exception as exc:
            results = [exc] * len(items)
        for item, result in zip(items, results, strict=True):
            if item.future.done():
                continue
            if isinstance(result, BaseException):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
