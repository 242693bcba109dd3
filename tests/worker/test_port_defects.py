"""The known defects of the stock bullmq Python worker must not show in Conveyor.

(Killed-worker recovery within 15 s is in test_resilience.py; delay precision in test_scheduling.py.)
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio.client import Redis

from conveyor import Conveyor, JobContext, JobState, Queue
from tests.worker.conftest import running, state_is, wait_until


async def test_producer_client_without_decode_responses_still_gives_handlers_their_data(
    app: Conveyor, redis_url: str
) -> None:
    seen: list[Any] = []

    @app.handler("background", "echo")
    async def echo(payload: dict[str, Any]) -> Any:
        seen.append(payload)
        return payload

    raw = Redis.from_url(redis_url)  # bytes responses: what broke the stock port
    try:
        queue = Queue(raw, "background")
        async with running(app.worker(["background"])):
            job_id = await queue.add("echo", {"filePath": "src/index.ts", "n": 1})
            await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
            job = await queue.get_job(job_id)
    finally:
        await raw.aclose()
    assert seen == [{"filePath": "src/index.ts", "n": 1}]
    assert job.data == {"filePath": "src/index.ts", "n": 1}
    assert job.type == "echo"


async def test_sub_second_backoff_on_an_idle_worker_is_not_rounded_to_seconds(app: Conveyor) -> None:
    attempts: list[float] = []

    @app.handler("background", "flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> None:
        attempts.append(time.monotonic())
        if ctx.job.attempt == 1:
            raise RuntimeError("retry me")

    async with running(app.worker(["background"])):
        await asyncio.sleep(0.5)  # idle and blocked on Redis when the retry is scheduled
        await app.add("background", "flaky", {}, attempts=2, backoff={"type": "fixed", "delay": 250})
        await wait_until(lambda: len(attempts) == 2)
    gap = attempts[1] - attempts[0]
    assert 0.25 <= gap < 0.3, gap


@pytest.mark.slow
async def test_worker_idle_for_60_seconds_picks_up_a_new_job_within_50ms(app: Conveyor) -> None:
    started: list[float] = []

    @app.handler("background", "ping")
    async def ping(payload: dict[str, Any]) -> None:
        started.append(time.time())

    async with running(app.worker(["background"])):
        await asyncio.sleep(61)
        added = time.time()
        await app.add("background", "ping", {})
        await wait_until(lambda: started, timeout=5, interval=0.005)
    assert started[0] - added < 0.05, started[0] - added
