"""Hooks around the worker loop: cross-cutting behaviour (metrics, tracing, logging) without branches in it.

A hook sees each attempt start, may wrap its execution (e.g. in a tracing span), and sees how it ended. Hooks
must be cheap and must not raise; an exception in a hook is logged and ignored.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from conveyor.worker.context import JobInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """An attempt about to run. `wait_s` runs from enqueue (or due time, for delayed jobs) to start."""

    job: JobInfo
    fields: dict[str, str]
    wait_s: float


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How an attempt ended: `completed`, `retried` (will run again) or `failed` (for good)."""

    job: JobInfo
    outcome: str
    run_s: float
    error: BaseException | None


class WorkerHook:
    """Base class: override what you need."""

    def attempt_started(self, start: AttemptStart) -> None:
        """Called when an attempt begins, before the handler runs."""

    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        """Wraps the handler call (and the recording of its outcome)."""
        yield

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Called once the attempt's outcome is stored in Redis."""

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Called when the stalled-job check requeued jobs whose worker died."""


class HookSet:
    """Calls every hook, isolating the worker from hook failures."""

    def __init__(self, hooks: Sequence[WorkerHook] = ()) -> None:
        self.hooks = list(hooks)

    def _each(self, method: str, *args: Any) -> None:
        for hook in self.hooks:
            try:
                getattr(hook, method)(*args)
            except Exception:
                log.exception("worker hook %s.%s failed", type(hook).__name__, method)

    def attempt_started(self, start: AttemptStart) -> None:
        """Notify every hook of a starting attempt."""
        self._each("attempt_started", start)

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Notify every hook of a finished attempt."""
        self._each("attempt_ended", end)

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Notify every hook of requeued stalled jobs."""
        self._each("jobs_stalled", queue, job_ids)

    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        """Enter every hook's wrapper, innermost last."""
        with contextlib.ExitStack() as stack:
            for hook in self.hooks:
                try:
                    stack.enter_context(hook.around_attempt(start))
                except Exception:
                    log.exception("worker hook %s.around_attempt failed", type(hook).__name__)
            yield
