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
from tests.support import assert_latency, blocked_clients
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
    attempts: dict[int, list[float]] = {0: [], 1: [], 2: []}

    @app.handler("background", "flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> None:
        attempts[payload["n"]].append(time.monotonic())
        if ctx.job.attempt == 1:
            raise RuntimeError("retry me")

    async with running(app.worker(["background"])):
        for n in attempts:
            await wait_until(lambda: blocked_clients(app.client))  # idle and blocked when the retry is scheduled
            await app.add("background", "flaky", {"n": n}, attempts=2, backoff={"type": "fixed", "delay": 250})
            await wait_until(lambda: len(attempts[n]) == 2)  # noqa: B023 (awaited in this iteration)
    late_ms = [(second - first) * 1000 - 250 for first, second in attempts.values()]
    # Rounded to seconds, a retry would come >= 750 ms late: the worst bound sits well below that.
    assert_latency(late_ms, promised_ms=50, worst_ms=500, what="retry after a 250 ms backoff, lateness")


@pytest.mark.slow
async def test_worker_idle_for_60_seconds_picks_up_a_new_job_within_50ms(app: Conveyor) -> None:
    started: list[float] = []

    @app.handler("background", "ping")
    async def ping(payload: dict[str, Any]) -> None:
        started.append(time.time())

    async with running(app.worker(["background"])):
        await asyncio.sleep(61)
        pickups_ms = []
        for n in range(3):  # the first is the pickup after the long idle; the other two keep a busy machine fair
            added = time.time()
            await app.add("background", "ping", {})
            await wait_until(lambda: len(started) > n, timeout=5, interval=0.005)  # noqa: B023 (awaited here)
            pickups_ms.append((started[n] - added) * 1000)
    # The stock worker's defect was seconds after an idle (a timed-out blocking read, then a reconnect).
    assert_latency(pickups_ms, promised_ms=50, what="pickup after a 60 s idle")
