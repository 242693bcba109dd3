"""Running one attempt of a handler: payload model, timeout, deadline and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from concurrent.futures import Executor
from typing import Any

from pydantic import ValidationError

from conveyor.worker.batching import Batcher
from conveyor.worker.context import JobContext
from conveyor.worker.errors import (
    DeadlineExceededError,
    InvalidJobPayloadError,
    JobCancelledError,
    JobTimeoutError,
)
from conveyor.worker.handler import Handler
from conveyor.worker.sandbox import Sandbox, run_sandboxed

_NO_LIMIT = contextlib.nullcontext()


def attempt_budget_s(timeout_ms: int | None, deadline_ms: int | None, now_ms: int) -> tuple[float | None, bool]:
    """Seconds this attempt may run and whether the limit is the deadline (True) or the timeout (False)."""
    if deadline_ms is not None and deadline_ms <= now_ms:
        raise DeadlineExceededError("deadline exceeded before the attempt started")
    to_deadline = (deadline_ms - now_ms) / 1000 if deadline_ms is not None else None
    timeout = timeout_ms / 1000 if timeout_ms else None
    if to_deadline is not None and (timeout is None or to_deadline < timeout):
        return to_deadline, True
    return timeout, False


def _arguments(handler: Handler, data: Any, ctx: JobContext) -> tuple[Any, ...]:
    payload = data
    if handler.payload_model is not None:
        try:
            payload = handler.payload_model.model_validate(data)
        except ValidationError as exc:
            raise InvalidJobPayloadError(f"payload does not match {handler.payload_model.__name__}: {exc}") from exc
    return (payload, ctx) if handler.takes_context else (payload,)


async def run_attempt(
    handler: Handler,
    data: Any,
    ctx: JobContext,
    executor: Executor,
    *,
    budget_s: float | None,
    limit_is_deadline: bool,
    batcher: Batcher | None = None,
) -> Any:
    """Run the handler once, in the calling task, and return its result or raise why the attempt failed.

    Sync handlers run in `executor` so they never block the event loop (and with it, lock renewal). A sync
    handler cannot be interrupted: on timeout or cancellation its `ctx.cancelled` is set and the attempt is
    failed at once; the thread finishes in the background. Cancellation arrives as a cancel of the calling
    task with `ctx.cancel_requested` set (see `QueueRunner.cancel`).
    """
    if handler.sandbox is not None:
        return await _sandboxed(handler, handler.sandbox, data, ctx, budget_s, limit_is_deadline)
    args = _arguments(handler, data, ctx)
    limit = None if budget_s is None else asyncio.timeout(budget_s)  # most jobs have none: no timer to set up
    try:
        async with limit or _NO_LIMIT:
            if batcher is not None:
                return await batcher.submit(args[0], ctx)
            if handler.is_async:
                return await handler.func(*args)
            # Carry the job's context variables (log fields, trace span) into the handler's thread.
            call = functools.partial(contextvars.copy_context().run, handler.func, *args)
            ctx.thread = executor.submit(call)  # a shutdown waits for it: a thread cannot be stopped
            return await asyncio.wrap_future(ctx.thread)
    except TimeoutError:
        if limit is None or not limit.expired():
            raise  # the handler's own TimeoutError
        ctx.cancelled.set()
        if limit_is_deadline:
            raise DeadlineExceededError("deadline exceeded while running") from None
        raise JobTimeoutError(f"attempt timed out after {budget_s:.3f} s") from None
    except asyncio.CancelledError:
        ctx.cancelled.set()
        task = asyncio.current_task()
        if not ctx.cancel_requested or task is None:
            raise
        task.uncancel()
        raise JobCancelledError("job was cancelled while running") from None


async def _sandboxed(
    handler: Handler, limits: Sandbox, data: Any, ctx: JobContext, budget_s: float | None, limit_is_deadline: bool
) -> Any:
    try:
        return await run_sandboxed(handler.func, handler.payload_model, data, ctx, limits, budget_s)
    except JobTimeoutError:
        if limit_is_deadline and budget_s is not None and (limits.wall_s is None or budget_s <= limits.wall_s):
            raise DeadlineExceededError("deadline exceeded while running (sandbox killed)") from None
        raise
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not ctx.cancel_requested or task is None:
            raise
        task.uncancel()
        raise JobCancelledError("job was cancelled while running (sandbox killed)") from None
