"""Rate limits (queue-wide, per worker, per group, remote "slow down"), global concurrency, priority lanes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, NewJob, load_settings
from conveyor.config import QueueSettings, RateLimit
from conveyor.worker.errors import RateLimitedError
from tests.support import assert_latency
from tests.worker.conftest import running, state_is, wait_until


async def _app(redis_url: str, **queue: Any) -> Conveyor:
    settings = load_settings(
        redis_url=redis_url,
        conveyor_queues={"limited": QueueSettings(**queue)},
        conveyor_rate_limits={"openai": RateLimit(max=2, duration_ms=1000)},
    )
    app = Conveyor(settings)
    await app.connect()
    return app


@pytest.mark.slow
async def test_queue_rate_limit_paces_five_jobs_per_second_over_twenty_seconds(redis_url: str) -> None:
    app = await _app(redis_url, concurrency=10, rate_limit=RateLimit(max=5, duration_ms=1000))
    starts: list[float] = []

    @app.handler("limited", "tick")
    async def tick(payload: dict[str, Any]) -> None:
        starts.append(time.monotonic())

    try:
        ids = await app.add_bulk("limited", [NewJob("tick")] * 150)
        async with running(app.worker(["limited"])):
            await wait_until(lambda: starts, timeout=5)
            await asyncio.sleep(20.5)
        # When each job was taken (`processedOn`: the worker's clock as it fetched), which is what the limiter
        # admits. Handler start times add the event loop's own delays, which two CPU hogs stretched to nearly a
        # second once: a window's jobs then started together with the next window's.
        jobs = [await app.queue("limited").get_job(job_id) for job_id in ids]
        taken = sorted(
            job.processed_at.timestamp() for job in jobs if job.state is JobState.COMPLETED and job.processed_at
        )
        per_second = [sum(1 for t in taken if s <= t - taken[0] < s + 1) for s in range(20)]
        assert 90 <= sum(per_second) <= 110, per_second
        assert max(per_second) <= 6, per_second  # never a burst beyond the window's share
    finally:
        await app.close()


async def test_worker_rate_limit_caps_one_worker(redis_url: str) -> None:
    app = await _app(redis_url, concurrency=10, worker_rate_limit=RateLimit(max=10, duration_ms=500))
    starts: list[float] = []

    @app.handler("limited", "tick")
    async def tick(payload: dict[str, Any]) -> None:
        starts.append(time.monotonic())

    try:
        await app.add_bulk("limited", [NewJob("tick")] * 100)
        async with running(app.worker(["limited"])):
            await wait_until(lambda: len(starts) == 100, timeout=30)
        # 10 per 0.5 s window: the 91st to 100th jobs wait for the tenth window, and any 21 jobs in a row span
        # more than two windows' worth of boundaries. Small margins absorb the handlers' own start jitter.
        span = starts[-1] - starts[0]
        assert span >= 4.4, f"100 jobs started within {span:.2f} s"
        tightest = min(later - earlier for earlier, later in zip(starts, starts[20:], strict=False))
        assert tightest >= 0.4, f"21 jobs started within {tightest:.3f} s"
        assert span < 9.0, f"100 jobs took {span:.2f} s: the worker ran at half its limit or less"
    finally:
        await app.close()


async def test_group_rate_limit_puts_jobs_off_without_using_attempts(redis_url: str) -> None:
    app = await _app(redis_url, concurrency=10)
    starts: list[float] = []

    @app.handler("limited", "call")
    async def call(payload: dict[str, Any]) -> None:
        starts.append(time.monotonic())

    try:
        ids = [await app.add("limited", "call", {}, rate_key="openai", attempts=1) for _ in range(6)]
        queue = app.queue("limited")
        async with running(app.worker(["limited"])):
            for job_id in ids:
                await wait_until(lambda j=job_id: state_is(queue, j, JobState.COMPLETED), timeout=10)
        starts.sort()
        assert starts[-1] - starts[0] >= 1.9  # 2 per second: 6 jobs span three windows
        for job_id in ids:
            assert (await queue.get_job(job_id)).attempts_made == 1  # the put-offs cost no attempt
    finally:
        await app.close()


async def test_handler_saying_rate_limited_runs_again_later_without_losing_an_attempt(app: Conveyor) -> None:
    runs: list[float] = []

    @app.handler("background", "remote")
    async def remote(payload: dict[str, Any], ctx: JobContext) -> str:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RateLimitedError(300, "429 from the provider")
        return "done"

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "remote", {}, attempts=1)
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert job.result == "done"
    assert job.attempts_made == 1
    assert runs[1] - runs[0] >= 0.3


async def test_global_concurrency_holds_across_workers(redis_url: str) -> None:
    app = await _app(redis_url, concurrency=5, global_concurrency=3)
    running_now: list[int] = [0]
    peak: list[int] = [0]

    @app.handler("limited", "work")
    async def work(payload: dict[str, Any]) -> None:
        running_now[0] += 1
        peak[0] = max(peak[0], running_now[0])
        await asyncio.sleep(0.05)
        running_now[0] -= 1

    try:
        await app.add_bulk("limited", [NewJob("work")] * 40)
        async with running(app.worker(["limited"])), running(app.worker(["limited"])):
            await wait_until(lambda: _completed(app, 40), timeout=20)
        assert peak[0] <= 3
        assert peak[0] >= 2
    finally:
        await app.close()


async def test_critical_job_starts_within_100ms_while_low_jobs_saturate_the_queue(redis_url: str) -> None:
    app = await _app(redis_url, concurrency=4, reserved_slots=1, reserved_priority=1)
    started: dict[str, float] = {}
    release = asyncio.Event()

    @app.handler("limited", "slow")
    async def slow(payload: dict[str, Any], ctx: JobContext) -> None:
        started[ctx.job.id] = time.monotonic()
        await release.wait()

    @app.handler("limited", "urgent")
    async def urgent(payload: dict[str, Any], ctx: JobContext) -> None:
        started[ctx.job.id] = time.monotonic()

    try:
        await app.add_bulk("limited", [NewJob("slow", {}, _low()) for _ in range(40)])
        async with running(app.worker(["limited"])):
            await wait_until(lambda: len(started) >= 3, timeout=5)
            await asyncio.sleep(0.3)
            assert len(started) == 3  # the fourth slot is held for critical jobs
            waits_ms = []
            for _ in range(3):
                added = time.monotonic()
                critical = await app.add("limited", "urgent", {}, priority="critical")
                await wait_until(lambda: critical in started, timeout=2, interval=0.005)  # noqa: B023 (awaited here)
                waits_ms.append((started[critical] - added) * 1000)
            assert len(started) == 6  # the low jobs still hold the three other slots
            release.set()
        assert_latency(waits_ms, promised_ms=100, what="critical job start while low jobs saturate the queue")
    finally:
        await app.close()


def _low() -> Any:
    from conveyor import JobOptions

    return JobOptions(priority="low")


async def _completed(app: Conveyor, n: int) -> bool:
    return (await app.queue("limited").counts()).completed >= n
