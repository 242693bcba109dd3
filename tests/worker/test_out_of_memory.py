"""A worker through a Redis out of memory: its duties (lock renewal, stalled check, heartbeat) outlive the
refusals, and a job whose completion Redis refused is recovered once memory is freed, not lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from conveyor import Conveyor, JobState, load_settings
from conveyor.redis.embedded import EmbeddedRedis
from tests.support import fill_up
from tests.worker.conftest import running, state_is, wait_until

OwnRedisFactory = Callable[..., EmbeddedRedis]


async def test_a_job_finished_while_redis_is_out_of_memory_is_recovered_once_memory_is_freed(
    own_redis: OwnRedisFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = Conveyor(
        load_settings(
            redis_url=own_redis().url,
            conveyor_lock_duration_ms=1000,
            conveyor_stalled_interval_ms=500,
            conveyor_shutdown_grace_s=1,
        )
    )
    await app.connect()
    release = asyncio.Event()

    @app.handler("background", "wait")
    async def wait(payload: dict[str, Any]) -> str:
        await release.wait()
        return "done"

    queue = app.queue("background")
    try:
        async with running(app.worker(["background"])):
            job_id = await app.add("background", "wait", {})
            await wait_until(lambda: state_is(queue, job_id, JobState.ACTIVE))
            with caplog.at_level(logging.WARNING, logger="conveyor"):
                await fill_up(app.client)
                await asyncio.sleep(2.5)  # past the lock's 1 s: renewals and the stalled check are refused
                release.set()  # the handler returns: recording its result is refused too
                await asyncio.sleep(1)
                assert await queue.state_of(job_id) is JobState.ACTIVE  # not lost, not finished
                await app.client.config_set("maxmemory", "0")
                await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=15)
        job = await queue.get_job(job_id)
        assert job.result == "done"
        assert job.attempts_started == 2  # requeued by the stalled check and run again
        refused = [r.getMessage() for r in caplog.records if "maxmemory" in r.getMessage()]
        assert any("lock renewal failed" in message for message in refused), refused
    finally:
        await app.close()
