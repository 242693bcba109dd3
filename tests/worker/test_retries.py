"""Failed attempts are retried with backoff; every attempt is kept in the retry history."""

from __future__ import annotations

from typing import Any

from conveyor import Conveyor, JobContext, JobState, NonRetryableError
from tests.worker.conftest import running, state_is, wait_until


async def test_failing_job_is_retried_with_exponential_backoff_then_succeeds(app: Conveyor) -> None:
    @app.handler("background", "flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> str:
        if ctx.job.attempt < 3:
            raise RuntimeError(f"attempt {ctx.job.attempt} failed")
        return "third time lucky"

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "flaky", {}, attempts=3, backoff={"type": "exponential", "delay": 200})
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert job.result == "third time lucky"
    assert job.attempts_made == 3
    assert [record.attempt for record in job.history] == [1, 2]
    assert "attempt 1 failed" in job.history[0].error
    assert "Traceback" in job.history[0].stacktrace
    assert "flaky" in job.history[0].stacktrace
    assert job.history[0].worker
    # exponential: ~200 ms before attempt 2, ~400 ms before attempt 3
    first_gap = (job.history[1].failed_at - job.history[0].failed_at).total_seconds()
    assert 0.2 <= first_gap < 0.4
    assert job.finished_at is not None
    second_gap = (job.finished_at - job.history[1].failed_at).total_seconds()
    assert 0.4 <= second_gap < 0.6


async def test_job_fails_for_good_when_attempts_are_exhausted(app: Conveyor) -> None:
    @app.handler("background", "always-fails")
    async def always_fails(payload: dict[str, Any]) -> None:
        raise ValueError("nope")

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "always-fails", {}, attempts=2, backoff={"type": "fixed", "delay": 50})
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    job = await queue.get_job(job_id)
    assert job.attempts_made == 2
    assert job.failed_reason == "ValueError: nope"
    assert len(job.history) == 2


async def test_non_retryable_error_skips_remaining_attempts(app: Conveyor) -> None:
    @app.handler("background", "fatal")
    async def fatal(payload: dict[str, Any]) -> None:
        raise NonRetryableError("bad input, retrying will not help")

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "fatal", {}, attempts=5)
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    job = await queue.get_job(job_id)
    assert job.attempts_made == 1
    assert "bad input" in (job.failed_reason or "")


async def test_queue_defaults_apply_indexing_retries_three_times(app: Conveyor) -> None:
    @app.handler("indexing", "broken")
    async def broken(payload: dict[str, Any]) -> None:
        raise RuntimeError("disk on fire")

    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        job_id = await app.add("indexing", "broken", {}, backoff={"type": "fixed", "delay": 10})
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    job = await queue.get_job(job_id)
    assert job.max_attempts == 3
    assert job.attempts_made == 3
