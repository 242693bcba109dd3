"""Hooks around the worker loop: cross-cutting behaviour (metrics, tracing, logging) without branches in it.

A hook sees each attempt start, may wrap its execution (e.g. in a tracing span), and sees how it ended. Hooks
must be cheap and must not raise; an exception in a hook is logged and ignored.

Hooks observe; they never change what becomes of a job. The rules that do (retries, deadlines, rate-limit
groups) are policies, on an interface of their own (`conveyor.worker.policies`). Copying final failures into
the dead-letter queue is a hook (`DeadLetterKeeper`): it happens after the failure is stored, off the job's path.

Dispatch is paid per attempt, so `HookSet` sorts its hooks once, at construction, by the methods they
override: a method no hook overrides costs nothing, a single `around_attempt` is entered directly, and one that
returns `UNWRAPPED` (nothing to wrap this time, e.g. tracing with no tracer provider set) is not entered at all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from conveyor.worker.context import JobInfo

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How an attempt ended. The values are the texts logs and metrics show."""

    COMPLETED = "completed"
    RETRIED = "retried"  # failed, and will run again
    FAILED = "failed"  # for good
    RATE_LIMITED = "rate-limited"  # put off without counting an attempt
    REFUSED = "refused"  # no handler here: put off for a worker that has one, without counting an attempt
    LOST = "lost"  # nothing recorded: the lock was lost, Redis was unavailable, or the job was handed back


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """An attempt about to run. `wait_s` runs from enqueue (or due time, for delayed jobs) to start."""

    job: JobInfo
    fields: dict[str, str]
    wait_s: float


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """How an attempt ended (never `Outcome.LOST`: a lost attempt reports no end)."""

    job: JobInfo
    outcome: Outcome
    run_s: float
    error: BaseException | None


# What `around_attempt` returns when it has nothing to wrap: the worker then neither enters nor leaves it.
UNWRAPPED: AbstractContextManager[None] = contextlib.nullcontext()


class WorkerHook:
    """Base class: override what you need."""

    def attempt_started(self, start: AttemptStart) -> None:
        """Called when an attempt begins, before the handler runs."""

    def around_attempt(self, start: AttemptStart) -> AbstractContextManager[None]:
        """Wraps the handler call (and the recording of its outcome) in the context manager it returns: a
        `contextlib.contextmanager` generator will do, a reusable object without state costs less per job, and
        `UNWRAPPED` (nothing to wrap this time) costs least."""
        return UNWRAPPED

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Called once the attempt's outcome is stored in Redis."""

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Called when the stalled-job check requeued jobs whose worker died."""


def _overrides(hook: WorkerHook, method: str) -> bool:
    overridden = getattr(type(hook), method, None) is not getattr(WorkerHook, method)
    return overridden or method in getattr(hook, "__dict__", ())


def _name(call: Callable[..., Any]) -> str:
    return type(getattr(call, "__self__", call)).__name__


def _call_each(calls: Sequence[Callable[..., None]], *args: Any) -> None:
    for call in calls:
        try:
            call(*args)
        except Exception:
            log.exception("worker hook %s.%s failed", _name(call), call.__name__)


class HookSet:
    """Calls every hook, isolating the worker from hook failures."""

    def __init__(self, hooks: Sequence[WorkerHook] = ()) -> None:
        self.hooks = hooks

    @property
    def hooks(self) -> tuple[WorkerHook, ...]:
        """The hooks, in the order they were added (add one with `add`, or assign them all anew)."""
        return self._hooks

    @hooks.setter
    def hooks(self, hooks: Sequence[WorkerHook]) -> None:
        self._hooks: tuple[WorkerHook, ...] = ()
        self._started: list[Callable[[AttemptStart], None]] = []
        self._around: list[Callable[[AttemptStart], AbstractContextManager[None]]] = []
        self._ended: list[Callable[[AttemptEnd], None]] = []
        self._stalled: list[Callable[[str, Sequence[str]], None]] = []
        for hook in hooks:
            self.add(hook)

    def add(self, hook: WorkerHook) -> None:
        """Add a hook after the others (innermost `around_attempt`, last notified)."""
        self._hooks = (*self._hooks, hook)
        if _overrides(hook, "attempt_started"):
            self._started.append(hook.attempt_started)
        if _overrides(hook, "around_attempt"):
            self._around.append(hook.around_attempt)
        if _overrides(hook, "attempt_ended"):
            self._ended.append(hook.attempt_ended)
        if _overrides(hook, "jobs_stalled"):
            self._stalled.append(hook.jobs_stalled)

    @property
    def watch_starts(self) -> bool:
        """Whether a hook looks at attempt starts (else `AttemptStart` need not be made)."""
        return bool(self._started or self._around)

    @property
    def watch_ends(self) -> bool:
        """Whether a hook looks at attempt ends (else `AttemptEnd` need not be made)."""
        return bool(self._ended)

    def attempt_started(self, start: AttemptStart) -> None:
        """Notify every hook of a starting attempt."""
        _call_each(self._started, start)

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Notify every hook of a finished attempt."""
        _call_each(self._ended, end)

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Notify every hook of requeued stalled jobs."""
        _call_each(self._stalled, queue, job_ids)

    def attempt(self, start: AttemptStart | None) -> AbstractContextManager[None]:
        """For the runner: enter every hook's `around_attempt`, then notify `attempt_started`. `start` is None
        when no hook looks at starts (`watch_starts`)."""
        if start is None:
            return UNWRAPPED
        if len(self._around) > 1:
            return _Wrappers(self._around, start, self._started)
        if self._around:  # the usual case: one hook wraps, and often has nothing to wrap this time
            around = self._around[0]
            try:
                wrapper = around(start)
            except Exception:
                log.exception("worker hook %s.around_attempt failed", _name(around))
                wrapper = UNWRAPPED
            if wrapper is not UNWRAPPED:
                return _Wrapper(wrapper, around, start, self._started)
        self.attempt_started(start)  # nothing to enter first
        return UNWRAPPED


class _Wrapper:
    """One hook's `around_attempt` context manager, entered without an ExitStack."""

    __slots__ = ("_around", "_entered", "_start", "_started", "_wrapper")

    def __init__(
        self,
        wrapper: AbstractContextManager[None],
        around: Callable[[AttemptStart], AbstractContextManager[None]],
        start: AttemptStart,
        started: Sequence[Callable[[AttemptStart], None]],
    ) -> None:
        self._wrapper = wrapper
        self._around = around  # the method that made it, named in the log
        self._start = start
        self._started = started
        self._entered = False

    def __enter__(self) -> None:
        try:
            self._wrapper.__enter__()
            self._entered = True
        except Exception:
            log.exception("worker hook %s.around_attempt failed", _name(self._around))
        _call_each(self._started, self._start)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool | None:
        return self._wrapper.__exit__(kind, error, trace) if self._entered else None


class _Wrappers:
    """Several hooks' `around_attempt`, entered in order and left in reverse, as nested `with` blocks would be:
    a wrapper that suppresses the exception hides it from the outer ones, one that raises passes its own on.
    (An ExitStack does the same at several times the cost per attempt.)"""

    __slots__ = ("_arounds", "_entered", "_start", "_started")

    def __init__(
        self,
        arounds: Sequence[Callable[[AttemptStart], AbstractContextManager[None]]],
        start: AttemptStart,
        started: Sequence[Callable[[AttemptStart], None]] = (),
    ) -> None:
        self._arounds = arounds
        self._start = start
        self._started = started
        self._entered: list[AbstractContextManager[None]] = []

    def __enter__(self) -> None:
        for around in self._arounds:
            try:
                wrapper = around(self._start)
                if wrapper is UNWRAPPED:
                    continue
                wrapper.__enter__()
            except Exception:
                log.exception("worker hook %s.around_attempt failed", _name(around))
                continue
            except BaseException as exc:  # e.g. a cancellation: leave the ones entered, as `with` would
                self.__exit__(type(exc), exc, exc.__traceback__)
                raise
            self._entered.append(wrapper)
        _call_each(self._started, self._start)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> bool:
        pending = error
        for wrapper in reversed(self._entered):
            try:
                if pending is None:
                    wrapper.__exit__(None, None, None)
                elif wrapper.__exit__(type(pending), pending, pending.__traceback__):
                    pending = None  # suppressed: the outer wrappers see no exception
            except BaseException as raised:
                pending = raised
        self._entered.clear()
        if pending is error:
            return False  # nothing happened, or the exception goes on as it came
        if pending is None:
            return True  # a wrapper suppressed it
        raise pending
