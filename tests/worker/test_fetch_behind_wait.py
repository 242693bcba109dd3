"""The fetch sent behind the fetcher's blocking wait: an idle worker takes a new job in the same round trip that
wakes it. The script then stamps `processedOn` with the time the wait began, so it must be set again."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from conveyor import Conveyor, JobContext, JobState
from conveyor.worker.waiting import MarkerWait
from tests.support import running, wait_until
from tests.worker.conftest import state_is


async def fetcher_waits(client: Redis) -> bool:
    """True while a worker's fetcher connection is blocked in BZPOPMIN (with its fetch queued behind)."""
    return any(is_fetcher(c["name"]) and c["cmd"] == "bzpopmin" for c in await client.client_list())


def is_fetcher(name: str) -> bool:
    """A fetcher's connection carries a BullMQ worker name (`bull:<base64(queue)>:w:<worker>`)."""
    return name.startswith("bull:") and ":w:" in name


def recording_handler(app: Conveyor, started: dict[str, float]) -> None:
    @app.handler("background", "record")
    async def record(_: Any, ctx: JobContext) -> None:
        started[ctx.job.id] = time.time()


async def test_a_job_taken_behind_a_long_wait_records_when_it_really_started(app: Conveyor) -> None:
    started: dict[str, float] = {}
    recording_handler(app, started)
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        await wait_until(lambda: fetcher_waits(app.client))
        await asyncio.sleep(1.5)  # a stale stamp would be this much older than the job
        job_id = await app.add("background", "record", {})
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert job.created_at is not None
    assert job.processed_at is not None
    assert job.processed_at >= job.created_at  # not the time the wait began
    assert abs(job.processed_at.timestamp() - started[job_id]) < 0.5


async def test_shutdown_ends_the_wait_at_once_and_takes_no_job(app: Conveyor) -> None:
    started: dict[str, float] = {}
    recording_handler(app, started)
    queue = app.queue("background")
    worker = app.worker(["background"])
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: fetcher_waits(app.client))
    worker.request_stop()
    await asyncio.wait_for(task, 3)  # the wait lasts 30 s unless ended (and the worker gives up on it after 5 s)
    assert not await fetcher_waits(app.client)
    job_id = await app.add("background", "record", {})
    await asyncio.sleep(0.3)
    assert await queue.state_of(job_id) is not JobState.ACTIVE
    assert started == {}


async def test_jobs_still_run_after_redis_forgets_the_script_during_the_wait(app: Conveyor) -> None:
    started: dict[str, float] = {}
    recording_handler(app, started)
    async with running(app.worker(["background"])):
        await wait_until(lambda: fetcher_waits(app.client))
        await app.client.script_flush()
        ids = [await app.add("background", "record", {}) for _ in range(3)]
        await wait_until(lambda: set(started) == set(ids))


async def test_jobs_still_run_after_the_waiting_connection_is_killed(app: Conveyor) -> None:
    started: dict[str, float] = {}
    recording_handler(app, started)
    async with running(app.worker(["background"])):
        await wait_until(lambda: fetcher_waits(app.client))
        killed = 0
        for client in await app.client.client_list():
            if is_fetcher(client["name"]):
                killed += await app.client.client_kill_filter(_id=client["id"])
        assert killed
        ids = [await app.add("background", "record", {}) for _ in range(3)]
        await wait_until(lambda: set(started) == set(ids))
        await wait_until(lambda: fetcher_waits(app.client))  # and it waits the same way again


@pytest.fixture
async def waits(app: Conveyor) -> AsyncIterator[MarkerWait]:
    """A fetcher's wait of its own, on a blocking connection named as a worker's."""
    assert app.target is not None
    blocking = app.target.client(blocking=True, name="bull:test:w:own")
    yield MarkerWait(app.queue("background"), blocking)
    await blocking.aclose()


async def _reported_once_closed(waits: MarkerWait, caplog: pytest.LogCaptureFixture) -> list[str]:
    """Close the wait's connection (a call left in flight fails with it), let asyncio collect what failed, and
    return the errors logged and the failures reported as never read."""
    waits.close()
    await asyncio.sleep(0.1)
    gc.collect()  # asyncio reports an unread exception when the failed future is collected
    await asyncio.sleep(0)
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or "never retrieved" in r.getMessage()]


async def test_a_fetcher_cancelled_mid_wait_leaves_no_failure_unread(
    app: Conveyor, waits: MarkerWait, caplog: pytest.LogCaptureFixture
) -> None:
    # Cancelled (not stopped, as when the process shuts down around it), the fetcher leaves its call behind;
    # when that call then fails with its connection, asyncio must not report an exception nobody read.
    assert waits.carries_fetch
    fetching = asyncio.create_task(
        waits.pop_then_fetch(asyncio.Event(), token="t", lock_ms=30_000, worker="w", timestamp=0)
    )
    await wait_until(lambda: fetcher_waits(app.client))
    fetching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fetching
    assert await _reported_once_closed(waits, caplog) == []


async def test_a_plain_wait_ended_by_stop_returns_nothing_and_logs_no_error(
    app: Conveyor, waits: MarkerWait, caplog: pytest.LogCaptureFixture
) -> None:
    # The wait without a fetch behind it (queues with a queue-wide concurrency, rate limit or reserved slots):
    # `stop` ends it before BZPOPMIN returns, and the wait still in flight is cancelled, not read.
    stop = asyncio.Event()
    waiting = asyncio.create_task(waits.pop(stop, nudgeable=False))
    await wait_until(lambda: fetcher_waits(app.client))
    stop.set()
    assert await asyncio.wait_for(waiting, 5) is None
    assert await _reported_once_closed(waits, caplog) == []
