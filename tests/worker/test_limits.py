"""Timeouts per attempt, deadlines per job, and cancellation of running jobs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor import Conveyor, JobContext, JobState
from tests.worker.conftest import running, state_is, wait_until


async def test_attempt_that_exceeds_its_timeout_fails_and_is_retried(app: Conveyor) -> None:
    @app.handler("background", "slow-then-fast")
    async def slow_then_fast(payload: dict[str, Any], ctx: JobContext) -> str:
        if ctx.job.attempt == 1:
            await asyncio.sleep(5)
        return "fast"

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "slow-then-fast", {}, attempts=2, timeout_ms=200)
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=5)
    job = await queue.get_job(job_id)
    assert job.result == "fast"
    assert "JobTimeoutError" in job.history[0].error


async def test_sync_handler_timeout_sets_the_cancelled_flag(app: Conveyor) -> None:
    flags: list[bool] = []

    @app.handler("background", "cooperative")
    def cooperative(payload: dict[str, Any], ctx: JobContext) -> None:
        flags.append(ctx.cancelled.wait(5))

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "cooperative", {}, timeout_ms=200)
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
        await wait_until(lambda: flags)
    assert flags == [True]


async def test_job_past_its_deadline_fails_as_deadline_exceeded_without_retries(app: Conveyor) -> None:
    @app.handler("background", "long")
    async def long(payload: dict[str, Any]) -> None:
        await asyncio.sleep(5)

    queue = app.queue("background")
    deadline = datetime.now(UTC) + timedelta(milliseconds=300)
    async with running(app.worker(["background"])):
        started = time.monotonic()
        job_id = await app.add("background", "long", {}, attempts=5, deadline=deadline)
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
        assert time.monotonic() - started < 2
    job = await queue.get_job(job_id)
    assert "DeadlineExceededError" in (job.failed_reason or "")
    assert job.attempts_made == 1


async def test_retry_that_would_start_after_the_deadline_fails_instead(app: Conveyor) -> None:
    @app.handler("background", "fails")
    async def fails(payload: dict[str, Any]) -> None:
        raise RuntimeError("transient")

    queue = app.queue("background")
    deadline = datetime.now(UTC) + timedelta(seconds=2)
    async with running(app.worker(["background"])):
        job_id = await app.add(
            "background", "fails", {}, attempts=5, deadline=deadline, backoff={"type": "fixed", "delay": 5000}
        )
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    job = await queue.get_job(job_id)
    assert job.attempts_made == 1
    assert job.failed_reason == "RuntimeError: transient"


async def test_cancelling_an_active_job_fails_it_as_cancelled(app: Conveyor) -> None:
    started = asyncio.Event()

    @app.handler("background", "endless")
    async def endless(payload: dict[str, Any]) -> None:
        started.set()
        await asyncio.sleep(60)

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "endless", {}, attempts=3)
        await asyncio.wait_for(started.wait(), 5)
        t0 = time.monotonic()
        assert await queue.cancel(job_id) is JobState.ACTIVE
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
        assert time.monotonic() - t0 < 1.0
    job = await queue.get_job(job_id)
    assert "JobCancelledError" in (job.failed_reason or "")
    assert job.attempts_made == 1


async def test_cancelling_a_waiting_job_removes_it(app: Conveyor) -> None:
    queue = app.queue("background")
    job_id = await app.add("background", "anything", {}, delay_ms=60_000)
    assert await queue.cancel(job_id) is JobState.DELAYED
    assert await queue.state_of(job_id) is JobState.UNKNOWN
