"""Hooks see every attempt start and end, with wait time that excludes deliberate delay."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor import Conveyor, JobContext, JobState
from conveyor.worker.hooks import AttemptEnd, AttemptStart, WorkerHook
from tests.worker.conftest import running, state_is, wait_until


class Recorder(WorkerHook):
    def __init__(self) -> None:
        self.starts: list[AttemptStart] = []
        self.ends: list[AttemptEnd] = []
        self.stalled: list[str] = []

    def attempt_started(self, start: AttemptStart) -> None:
        self.starts.append(start)

    def attempt_ended(self, end: AttemptEnd) -> None:
        self.ends.append(end)

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        self.stalled.extend(job_ids)


# Deliberate delays of a second: a wait that included one would be at least that long, while pickup on a loaded
# machine (two CPU hogs, a cluster of three nodes on two cores) can take a few hundred milliseconds.
DELAY_MS = 1000
SHORTER_THAN_THE_DELAY_S = 0.9


class Broken(WorkerHook):
    def attempt_started(self, start: AttemptStart) -> None:
        raise RuntimeError("a broken hook must not break the worker")


async def test_hooks_see_completed_retried_and_failed_attempts(app: Conveyor) -> None:
    @app.handler("background", "twice")
    async def twice(payload: dict[str, Any], ctx: JobContext) -> str:
        if ctx.job.attempt == 1:
            raise RuntimeError("first try fails")
        return "ok"

    @app.handler("background", "never")
    async def never(payload: dict[str, Any]) -> None:
        raise RuntimeError("always fails")

    recorder = Recorder()
    queue = app.queue("background")
    async with running(app.worker(["background"], hooks=[Broken(), recorder])):
        ok = await app.add("background", "twice", {}, attempts=2, backoff={"type": "fixed", "delay": DELAY_MS})
        bad = await app.add("background", "never", {}, attempts=1)
        await wait_until(lambda: state_is(queue, ok, JobState.COMPLETED))
        await wait_until(lambda: state_is(queue, bad, JobState.FAILED))
        await wait_until(lambda: len(recorder.ends) == 3)
    outcomes = sorted((end.job.id, end.outcome) for end in recorder.ends)
    assert outcomes == sorted([(ok, "retried"), (ok, "completed"), (bad, "failed")])
    assert all(end.run_s >= 0 for end in recorder.ends)
    assert all(start.wait_s < SHORTER_THAN_THE_DELAY_S for start in recorder.starts)  # the backoff is not waiting


async def test_wait_time_of_a_delayed_job_counts_from_its_due_time(app: Conveyor) -> None:
    @app.handler("background", "noop")
    async def noop(payload: dict[str, Any]) -> None:
        return None

    recorder = Recorder()
    async with running(app.worker(["background"], hooks=[recorder])):
        await app.add("background", "noop", {}, delay_ms=DELAY_MS)
        await wait_until(lambda: len(recorder.ends) == 1)
    assert recorder.starts[0].wait_s < SHORTER_THAN_THE_DELAY_S
