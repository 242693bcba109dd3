"""Redis itself misbehaves: killed and restarted from its append-only file under load, frozen (SIGSTOP)
longer than a network blip, and raced by many producers adding one job id at once.

Each run of a job's handler is noted in a ledger file outside Redis by the worker subprocesses of
`tests/worker/sample_app.py`; producers keep their own list of the jobs Redis acknowledged.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from conveyor import Conveyor, JobOptions, NewJob, load_settings
from conveyor.queue.errors import EnqueueUnconfirmedError
from conveyor.redis.embedded import EmbeddedRedis
from tests.conftest import OwnRedisFactory
from tests.faults.ledger import (
    MAX_RUNS,
    QUEUE,
    Ledger,
    all_finished,
    assert_invariants,
    fetchers_waiting,
    start_worker,
)
from tests.support import wait_until
from tests.worker.conftest import WorkerProcesses

pytestmark = pytest.mark.slow


@pytest.fixture
def server(own_redis: OwnRedisFactory) -> EmbeddedRedis:
    return own_redis(transport="tcp")


@pytest.fixture
def own_workers(server: EmbeddedRedis) -> Iterator[WorkerProcesses]:
    procs = WorkerProcesses(server.url)
    yield procs
    procs.stop_all()


@pytest.fixture
async def own_app(server: EmbeddedRedis) -> AsyncIterator[Conveyor]:
    app = Conveyor(load_settings(redis_url=server.url))
    await app.connect()
    yield app
    await app.close()


def _jobs(count: int, seconds: float = 0.02) -> list[NewJob]:
    return [NewJob("ledger", {"seconds": seconds}, JobOptions(attempts=5)) for _ in range(count)]


async def _add_until_acknowledged(app: Conveyor, jobs: list[NewJob], deadline_s: float = 30) -> list[str]:
    """Add a batch, retrying with the same ids while Redis is away (the documented way to retry an add)."""
    ids: list[str] | None = None
    give_up = time.monotonic() + deadline_s
    while True:
        try:
            if ids is None:
                return await app.add_bulk(QUEUE, jobs)
            retried = [NewJob(j.type, j.data, JobOptions(attempts=5, job_id=i)) for j, i in zip(jobs, ids, strict=True)]
            return await app.add_bulk(QUEUE, retried)
        except EnqueueUnconfirmedError as exc:
            ids = ids or exc.job_ids
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.2)


async def test_redis_killed_and_restarted_from_its_aof_under_load_loses_no_acknowledged_job(
    server: EmbeddedRedis, own_app: Conveyor, own_workers: WorkerProcesses, ledger: Ledger
) -> None:
    start_worker(own_workers, ledger, concurrency=10)
    start_worker(own_workers, ledger, concurrency=10)
    await wait_until(lambda: fetchers_waiting(own_app, 2))
    acknowledged: list[str] = []

    async def produce() -> None:
        for _ in range(40):  # 40 batches of 25, about 4 s, across the crash
            acknowledged.extend(await _add_until_acknowledged(own_app, _jobs(25)))
            await asyncio.sleep(0.1)

    producer = asyncio.create_task(produce())
    await wait_until(lambda: len(ledger.runs()) >= 150)
    server.kill()  # kill -9: no shutdown, no final save
    await asyncio.sleep(1.0)
    server.restart()  # replays the append-only file
    await producer
    histogram = await assert_invariants(own_app, ledger, dict.fromkeys(acknowledged, 0.0))
    assert max(histogram) <= MAX_RUNS, histogram  # only jobs running at the crash may run again


async def test_redis_frozen_for_3_seconds_twice_stalls_no_job_and_the_queue_resumes(
    server: EmbeddedRedis, own_app: Conveyor, own_workers: WorkerProcesses, ledger: Ledger
) -> None:
    # Default lock (6 s) and stalled check: a Redis that stops answering for 3 s is slow, not a dead worker.
    for _ in range(2):
        own_workers.start(QUEUE, concurrency=10, TEST_LEDGER=str(ledger.path))
    await wait_until(lambda: fetchers_waiting(own_app, 2))
    added = dict.fromkeys(await own_app.add_bulk(QUEUE, _jobs(1500, seconds=0.05)), 0.0)  # about 4 s of work
    for runs_before in (100, 700):  # each freeze in the middle of the work
        await wait_until(lambda n=runs_before: len(ledger.runs()) >= n)
        assert len(ledger.runs()) < len(added)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGSTOP)  # frozen: a swapping host, a long fork, a paused VM
        await asyncio.sleep(3)
        os.kill(server.pid, signal.SIGCONT)
    histogram = await assert_invariants(own_app, ledger, added)
    assert histogram == {1: len(added)}  # no job was taken for stalled and run again
    assert await all_finished(own_app, len(added))


async def test_a_hundred_producers_racing_on_one_job_id_make_one_job_that_runs_once(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    start_worker(workers, ledger, concurrency=5)
    await wait_until(lambda: fetchers_waiting(app, 1))
    producers = [Conveyor(load_settings(redis_url=app.settings.redis_url)) for _ in range(10)]
    for producer in producers:
        await producer.connect()
    try:
        options = JobOptions(job_id="report-2026-12-06", attempts=1)
        results = await asyncio.gather(
            *[p.add(QUEUE, "ledger", {"seconds": 0.2}, options) for p in producers for _ in range(10)]
        )
    finally:
        for producer in producers:
            await producer.close()
    assert set(results) == {"report-2026-12-06"}
    await wait_until(lambda: all_finished(app, 1))
    await asyncio.sleep(0.5)  # a second job of that id would have been picked up by now
    assert {job_id: len(runs) for job_id, runs in ledger.runs().items()} == {"report-2026-12-06": 1}
    assert (await app.queue(QUEUE).counts()).completed == 1
