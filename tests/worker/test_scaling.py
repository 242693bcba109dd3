"""Many jobs across many worker processes: every job completes exactly once."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from conveyor import Conveyor, JobState, NewJob, Queue
from tests.worker.conftest import WorkerProcesses, wait_until


async def _run_counts(redis_url: str, queue: str, ids: list[str]) -> list[int]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        values = await client.mget([f"test:runs:{queue}:{job_id}" for job_id in ids])
        return [int(v or 0) for v in values]
    finally:
        await client.aclose()


@pytest.mark.parametrize("processes", [1, 5, 10])
async def test_jobs_spread_over_n_worker_processes_complete_exactly_once(
    app: Conveyor, redis_url: str, worker_processes: WorkerProcesses, processes: int
) -> None:
    for _ in range(processes):
        worker_processes.start("background", concurrency=4)
    await wait_until(lambda: _live_workers(app, processes), timeout=60)
    ids = await app.add_bulk("background", [NewJob("sleep", {"seconds": 0.02}) for _ in range(300)])
    queue = app.queue("background")
    await wait_until(lambda: _completed(queue, 300), timeout=60)
    assert await _run_counts(redis_url, "background", ids) == [1] * 300
    assert (await queue.counts()).failed == 0
    if processes > 1:
        completed = await queue.jobs(JobState.COMPLETED, 0, 300)
        assert len({job.result for job in completed}) > 1  # results are worker pids: the work was shared


async def test_two_thousand_concurrent_jobs_all_complete_exactly_once(
    app: Conveyor, redis_url: str, worker_processes: WorkerProcesses
) -> None:
    for _ in range(2):
        worker_processes.start("background", concurrency=50)
    await wait_until(lambda: _live_workers(app, 2), timeout=30)
    ids = await app.add_bulk("background", [NewJob("record", {"i": i}) for i in range(2000)])
    assert len(set(ids)) == 2000
    queue = app.queue("background")
    await wait_until(lambda: _completed(queue, 2000), timeout=120, interval=0.2)
    assert await _run_counts(redis_url, "background", ids) == [1] * 2000
    counts = await queue.counts()
    assert (counts.completed, counts.failed, counts.active, counts.pending) == (2000, 0, 0, 0)


async def _live_workers(app: Conveyor, n: int) -> bool:
    return len(await app.workers()) >= n


async def _completed(queue: Queue, n: int) -> bool:
    return (await queue.counts()).completed >= n
