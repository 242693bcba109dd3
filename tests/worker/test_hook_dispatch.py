"""HookSet dispatch without Redis: only the hooks that override a method are called, and a failing one is
logged and skipped."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from conveyor.worker.context import JobInfo
from conveyor.worker.hooks import UNWRAPPED, AttemptEnd, AttemptStart, HookSet, Outcome, WorkerHook

INFO = JobInfo("1", "q", "t", 1, 1, "w")
START = AttemptStart(INFO, {}, 0.0)


class Wrapping(WorkerHook):
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        self.calls.append(f"enter {self.name}")
        try:
            yield
        finally:
            self.calls.append(f"exit {self.name}")

    def attempt_started(self, start: AttemptStart) -> None:
        self.calls.append(f"started {self.name}")


class BrokenWrapper(WorkerHook):
    def around_attempt(self, start: AttemptStart) -> contextlib.AbstractContextManager[None]:
        raise RuntimeError("broken")


class EndsOnly(WorkerHook):
    def __init__(self) -> None:
        self.ends: list[AttemptEnd] = []

    def attempt_ended(self, end: AttemptEnd) -> None:
        self.ends.append(end)


def test_a_set_without_hooks_looks_at_nothing() -> None:
    hooks = HookSet([WorkerHook()])
    assert not hooks.watch_starts
    assert not hooks.watch_ends
    with hooks.attempt(None):
        pass


def test_a_hook_that_only_sees_ends_needs_no_start() -> None:
    recorder = EndsOnly()
    hooks = HookSet([recorder])
    assert not hooks.watch_starts
    hooks.attempt_ended(AttemptEnd(INFO, Outcome.COMPLETED, 0.1, None))
    assert [end.outcome for end in recorder.ends] == ["completed"]


def test_one_wrapper_is_entered_then_started_then_left() -> None:
    calls: list[str] = []
    with HookSet([Wrapping("a", calls)]).attempt(START):
        calls.append("body")
    assert calls == ["enter a", "started a", "body", "exit a"]


def test_wrappers_nest_in_order_and_every_start_is_seen_inside_them() -> None:
    calls: list[str] = []
    with HookSet([Wrapping("a", calls), Wrapping("b", calls)]).attempt(START):
        calls.append("body")
    assert calls == ["enter a", "enter b", "started a", "started b", "body", "exit b", "exit a"]


def test_a_wrapper_that_fails_to_enter_is_left_out() -> None:
    calls: list[str] = []
    for hooks in (HookSet([BrokenWrapper()]), HookSet([BrokenWrapper(), Wrapping("a", calls)])):
        with hooks.attempt(START):
            calls.append("body")
    assert calls == ["body", "enter a", "started a", "body", "exit a"]


class NothingToWrap(WorkerHook):
    """Like tracing with no tracer provider set: nothing to wrap this time."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def around_attempt(self, start: AttemptStart) -> contextlib.AbstractContextManager[None]:
        self.calls.append("asked")
        return UNWRAPPED

    def attempt_started(self, start: AttemptStart) -> None:
        self.calls.append("started")


def test_a_wrapper_with_nothing_to_wrap_costs_no_wrapping_and_starts_are_still_seen() -> None:
    calls: list[str] = []
    wrapper = HookSet([NothingToWrap(calls)]).attempt(START)
    assert wrapper is UNWRAPPED  # the runner's `with` enters nothing of the hooks'
    with wrapper:
        calls.append("body")
    with HookSet([NothingToWrap(calls), Wrapping("a", calls)]).attempt(START):
        calls.append("body")
    assert calls == ["asked", "started", "body", "asked", "enter a", "started", "started a", "body", "exit a"]


class FailsOnEnter(WorkerHook):
    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        raise RuntimeError("cannot enter")
        yield


def test_a_wrapper_that_fails_on_entering_is_logged_under_its_hook_and_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []
    with HookSet([FailsOnEnter()]).attempt(START):
        calls.append("body")
    assert calls == ["body"]
    assert "worker hook FailsOnEnter.around_attempt failed" in caplog.text


def test_hooks_added_later_are_dispatched_too() -> None:
    calls: list[str] = []
    hooks = HookSet()
    hooks.add(Wrapping("late", calls))
    assert hooks.watch_starts
    with hooks.attempt(START):
        pass
    assert calls == ["enter late", "started late", "exit late"]


def test_outcomes_read_as_the_texts_logs_and_metrics_show() -> None:
    assert Outcome.RATE_LIMITED == "rate-limited"
    assert f"{Outcome.LOST}" == "lost"


def test_hooks_assigned_anew_replace_the_dispatch() -> None:
    calls: list[str] = []
    hooks = HookSet([Wrapping("old", calls)])
    hooks.hooks = [Wrapping("new", calls)]
    with hooks.attempt(START):
        pass
    assert calls == ["enter new", "started new", "exit new"]


class Suppressing(WorkerHook):
    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        with contextlib.suppress(KeyError):
            yield


class Seeing(WorkerHook):
    def __init__(self, seen: list[type[BaseException] | None]) -> None:
        self.seen = seen

    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        try:
            yield
        except BaseException as exc:
            self.seen.append(type(exc))
            raise
        else:
            self.seen.append(None)


class FailingOnExit(WorkerHook):
    @contextlib.contextmanager
    def around_attempt(self, start: AttemptStart) -> Iterator[None]:
        yield
        raise ValueError("exit")


def test_an_exception_passes_every_wrapper_and_goes_on() -> None:
    seen: list[type[BaseException] | None] = []
    with pytest.raises(RuntimeError), HookSet([Seeing(seen), Seeing(seen)]).attempt(START):
        raise RuntimeError("body")
    assert seen == [RuntimeError, RuntimeError]


def test_an_exception_suppressed_by_an_inner_wrapper_is_hidden_from_the_outer_ones() -> None:
    seen: list[type[BaseException] | None] = []
    with HookSet([Seeing(seen), Suppressing()]).attempt(START):
        raise KeyError("body")
    assert seen == [None]


def test_an_exception_raised_by_a_wrapper_on_exit_reaches_the_outer_ones_and_goes_on() -> None:
    seen: list[type[BaseException] | None] = []
    with pytest.raises(ValueError, match="exit"), HookSet([Seeing(seen), FailingOnExit()]).attempt(START):
        pass
    assert seen == [ValueError]
