"""No job is lost when workers are stopped, killed, or Redis itself restarts."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis.asyncio as aioredis

from conveyor import Conveyor, JobContext, JobState, NewJob, load_settings
from conveyor.redis.errors import RedisUnavailableError
from conveyor.worker.maintenance import StalledJobSweeper
from tests.conftest import OwnRedisFactory
from tests.support import aof_synced
from tests.worker.conftest import WorkerProcesses, running, state_is, wait_until


async def test_sigterm_mid_job_hands_unfinished_jobs_back_and_loses_nothing(
    app: Conveyor, redis_url: str, worker_processes: WorkerProcesses
) -> None:
    proc = worker_processes.start("background", concurrency=4, grace_s=0.5)
    await wait_until(lambda: _live(app, 1), timeout=30)
    queue = app.queue("background")
    ids = await app.add_bulk(
        "background", [NewJob("sleep", {"seconds": 0.1}) for _ in range(4)] + [NewJob("sleep", {"seconds": 30})] * 2
    )
    await wait_until(lambda: _completed_at_least(queue, 4), timeout=30)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 15) == 0
    counts = await queue.counts()
    assert (counts.active, counts.failed, counts.completed, counts.pending) == (0, 0, 4, 2)
    long_job = await queue.get_job(ids[-1])
    assert long_job.attempts_made == 0  # handed back without counting an attempt
    assert await app.workers() == []  # a clean stop leaves the worker list at once


async def test_graceful_shutdown_lets_active_jobs_finish_within_the_grace_period(app: Conveyor) -> None:
    @app.handler("background", "short")
    async def short(payload: dict[str, object]) -> str:
        await asyncio.sleep(0.5)
        return "finished"

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "short")
        await wait_until(lambda: state_is(queue, job_id, JobState.ACTIVE))
    assert (await queue.get_job(job_id)).result == "finished"


async def test_killed_worker_job_is_recovered_by_another_within_15_seconds(
    app: Conveyor, redis_url: str, worker_processes: WorkerProcesses
) -> None:
    victim = worker_processes.start("background", concurrency=1)
    await wait_until(lambda: _live(app, 1), timeout=30)
    queue = app.queue("background")
    job_id = await app.add("background", "sleep", {"seconds": 2})
    await wait_until(lambda: state_is(queue, job_id, JobState.ACTIVE), timeout=10)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    worker_processes.start("background", concurrency=1)
    await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=30, interval=0.1)
    recovered_after = time.monotonic() - killed_at
    assert recovered_after < 15, recovered_after
    job = await queue.get_job(job_id)
    assert job.attempts_started == 2
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    assert await client.get(f"test:runs:background:{job_id}") == "1"  # the killed attempt never finished
    await client.aclose()


@pytest.mark.slow
async def test_workers_survive_a_redis_restart_and_enqueue_during_the_outage_fails_clearly(
    own_redis: OwnRedisFactory, worker_processes: WorkerProcesses
) -> None:
    server = own_redis(transport="tcp")
    worker_processes.redis_url = server.url
    worker_processes.start("background", concurrency=5)
    app = Conveyor(load_settings(redis_url=server.url))
    await app.connect()
    try:
        await wait_until(lambda: _live(app, 1), timeout=30)
        queue = app.queue("background")
        before = await app.add_bulk("background", [NewJob("record", {}) for _ in range(50)])
        await wait_until(lambda: _completed_at_least(queue, 50), timeout=30)
        await wait_until(lambda: _aof_synced(app))  # appendfsync everysec: on disk before the crash
        server.kill()
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match="may or may not have been added"):
            await app.add("background", "record", {})
        assert time.monotonic() - started < 10
        await asyncio.sleep(1)
        server.restart()
        after = await app.add_bulk("background", [NewJob("record", {}) for _ in range(50)])
        await wait_until(lambda: _completed_at_least(queue, 100), timeout=60, interval=0.2)
        assert set(before).isdisjoint(after)
        assert (await queue.counts()).failed == 0
    finally:
        await app.close()


async def _live(app: Conveyor, n: int) -> bool:
    return len(await app.workers()) >= n


async def _aof_synced(app: Conveyor) -> bool:
    return aof_synced(await app.client.info("persistence"))


async def _completed_at_least(queue: object, n: int) -> bool:
    from conveyor import Queue

    assert isinstance(queue, Queue)
    return (await queue.counts()).completed >= n


async def test_locks_are_renewed_through_the_shutdown_grace_period(redis_url: str) -> None:
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_lock_duration_ms=1000, conveyor_shutdown_grace_s=5))
    runs: list[str] = []

    @app.handler("background", "slow")
    async def slow(payload: dict[str, object], ctx: JobContext) -> None:
        runs.append(ctx.job.id)
        await asyncio.sleep(2.5)  # longer than the lock: only renewal keeps it

    await app.connect()
    try:
        queue = app.queue("background")
        worker = app.worker(["background"])
        task = asyncio.create_task(worker.run())
        job_id = await app.add("background", "slow")
        await wait_until(lambda: runs)
        worker.request_stop()
        await asyncio.wait_for(task, 10)
        sweeper = app.worker(["background"])  # a second worker's stalled check must find nothing to requeue
        swept = await StalledJobSweeper(sweeper.runners, 500).sweep_once()
        job = await queue.get_job(job_id)
        assert swept == []
        assert job.state is JobState.COMPLETED
        assert job.attempts_started == 1
    finally:
        await app.close()


async def test_cpu_heavy_sync_handlers_keep_their_locks_and_run_exactly_once(
    app: Conveyor, redis_url: str, worker_processes: WorkerProcesses
) -> None:
    worker_processes.start("background", concurrency=4, CONVEYOR_LOCK_DURATION_MS="1500")
    await wait_until(lambda: _live(app, 1), timeout=30)
    queue = app.queue("background")
    ids = await app.add_bulk("background", [NewJob("busy", {"seconds": 4})] * 4)  # each > 2 lock periods
    await wait_until(lambda: _completed_at_least(queue, 4), timeout=60, interval=0.2)
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    runs = await client.mget([f"test:runs:background:{job_id}" for job_id in ids])
    await client.aclose()
    assert runs == ["1"] * 4
    for job_id in ids:
        assert (await queue.get_job(job_id)).attempts_started == 1  # never taken over as stalled


async def test_the_stalled_check_runs_when_a_worker_starts(redis_url: str) -> None:
    """A job a dead worker left active (lock gone, already marked by an earlier check) is requeued and run at once
    by a new worker, not one stalled-check interval (here a minute) later."""
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_stalled_interval_ms=60_000))
    ran: list[str] = []

    @app.handler("background", "orphan")
    async def orphan(_: object, ctx: JobContext) -> None:
        ran.append(ctx.job.id)

    async with app:
        queue = app.queue("background")
        job_id = await app.add("background", "orphan", {})
        now = int(time.time() * 1000)
        await queue.scripts.move_to_active(token="dead-worker", lock_ms=1000, worker="gone", timestamp=now)
        await app.client.delete(f"{queue.keys.job(job_id)}:lock")  # its lock expired with the worker
        await app.client.sadd(queue.keys.stalled, job_id)  # an earlier check marked it
        started = time.monotonic()
        async with running(app.worker(["background"])):
            await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=10)
        assert time.monotonic() - started < 5
    assert ran == [job_id]
