"""Stale worker fencing: a worker process that stops (SIGSTOP here; a blocked event loop or a paused VM look the
same to Redis) past its lock, or dies (`kill -9`), loses no job, runs none more than twice, and does not keep the
queue from serving.

Two worker subprocesses of `tests/worker/sample_app.py` share one queue with a 2 s lock and a 0.5 s stalled
check. Each run of a job's handler is noted in a ledger file outside Redis, so the counts do not rest on what
Redis says happened.

The duplicate bound: a job runs at most twice when its worker stops or dies while the handler runs (the healthy
worker runs it again once the lock lapses; the stopped one, resumed, may finish its run, and its completion is
refused). A job taken but not started when the worker stopped never runs there: its lock is checked first. A
stopped worker's fetch queued behind its wait runs only within half a lock of the wait's start, so it takes at
most one job, never one requeued from its own stalled slots.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, load_settings
from tests.faults.ledger import (
    LOCK_MS,
    QUEUE,
    RECOVERY_S,
    Ledger,
    add_jobs,
    assert_invariants,
    fetchers_waiting,
    start_worker,
)
from tests.support import running, wait_until
from tests.worker.conftest import WorkerProcesses, state_is

PICKUP_S = 2.0  # a new job waits at most this long for the healthy worker (it takes ~1 ms on an idle machine)


def assert_nothing_stale_ran(ledger: Ledger, frozen_pid: int, resumed_at: float) -> None:
    """The frozen worker started no job after it resumed that another worker ran: a job it had taken before the
    freeze, whose lock lapsed meanwhile, is dropped (the only runs it may add are those under way at the freeze)."""
    stale = [
        job_id
        for job_id, runs in ledger.runs().items()
        if any(pid == frozen_pid and at >= resumed_at for pid, at in runs) and len(runs) > 1
    ]
    assert not stale, f"started on the frozen worker after it resumed, though another worker ran them: {stale}"


def pickup_s(ledger: Ledger, added: dict[str, float]) -> list[float]:
    """For each job: seconds from being added to its first run."""
    runs = ledger.runs()
    return sorted(min(at for _, at in runs[job_id]) - added_at for job_id, added_at in added.items())


async def test_an_idle_worker_stopped_past_its_lock_runs_nothing_stale_and_the_queue_keeps_serving(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    frozen = start_worker(workers, ledger, concurrency=2)
    await wait_until(lambda: fetchers_waiting(app, 1))
    start_worker(workers, ledger, concurrency=2)  # blocks second: Redis wakes the frozen one first
    await wait_until(lambda: fetchers_waiting(app, 2))
    os.kill(frozen.pid, signal.SIGSTOP)
    during: dict[str, float] = {}
    for _ in range(6):  # one at a time, as a trickle: each one wakes a fetcher
        during |= await add_jobs(app, 1, 0.02)
        await asyncio.sleep(0.3)
    await asyncio.sleep(LOCK_MS / 1000 + 1.0)  # past the lock of whatever the frozen worker took
    os.kill(frozen.pid, signal.SIGCONT)
    resumed_at = time.time()
    await asyncio.sleep(0.5)
    after: dict[str, float] = {}
    for _ in range(6):
        after |= await add_jobs(app, 1, 0.02)
        await asyncio.sleep(0.2)
    histogram = await assert_invariants(app, ledger, during | after)
    assert histogram == {1: len(during) + len(after)}  # nothing was running when it froze: no duplicate
    assert_nothing_stale_ran(ledger, frozen.pid, resumed_at)
    waits = pickup_s(ledger, during)
    # A job the frozen worker's queued fetch took (if one came within its lease) waits for its lock to lapse;
    # every other one is served at once.
    assert waits[-2] < PICKUP_S, waits
    assert waits[-1] < RECOVERY_S, waits
    assert max(pickup_s(ledger, after)) < PICKUP_S, pickup_s(ledger, after)


async def test_a_busy_worker_stopped_past_its_lock_loses_nothing_and_runs_a_job_twice_at_most(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    frozen = start_worker(workers, ledger, concurrency=10)
    start_worker(workers, ledger, concurrency=10)
    await wait_until(lambda: fetchers_waiting(app, 2))
    before = await add_jobs(app, 300, 0.05)
    await wait_until(lambda: len(ledger.runs()) >= 60)  # both are busy
    os.kill(frozen.pid, signal.SIGSTOP)
    during = await add_jobs(app, 20, 0.02)
    await asyncio.sleep(LOCK_MS / 1000 + 2.0)
    os.kill(frozen.pid, signal.SIGCONT)
    resumed_at = time.time()
    await asyncio.sleep(0.5)
    after = await add_jobs(app, 20, 0.02)
    await assert_invariants(app, ledger, before | during | after)
    assert_nothing_stale_ran(ledger, frozen.pid, resumed_at)
    assert max(pickup_s(ledger, during)) < RECOVERY_S, pickup_s(ledger, during)  # behind a backlog, served on
    assert max(pickup_s(ledger, after)) < PICKUP_S + 3, pickup_s(ledger, after)
    assert frozen.poll() is None  # it serves on: a refused completion does not end the process


async def test_a_worker_killed_again_and_again_under_load_loses_nothing(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    start_worker(workers, ledger, concurrency=10)
    victim = start_worker(workers, ledger, concurrency=10)
    await wait_until(lambda: fetchers_waiting(app, 2))
    added = await add_jobs(app, 700, 0.25)  # 20 slots: about 9 s of work, through every kill
    kills = 0
    for _ in range(3):
        # Kills further apart than a killed job's recovery plus its run: each job is hit by one kill at most
        # (BullMQ's maxStalledCount 1 fails a job whose worker dies twice while it runs; that is not a loss).
        await asyncio.sleep(RECOVERY_S - 1.5)
        victim.kill()
        victim.wait()
        kills += 1
        victim = start_worker(workers, ledger, concurrency=10)
    histogram = await assert_invariants(app, ledger, added)
    duplicates = sum(count for runs, count in histogram.items() if runs > 1)
    assert duplicates <= kills * 10, (kills, histogram)  # at most the jobs running at each kill


async def test_a_worker_stopped_while_a_job_runs_does_not_take_that_job_back_while_stopped(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    healthy = start_worker(workers, ledger, concurrency=1)
    long = await add_jobs(app, 1, 6.0)  # keeps the healthy worker's only slot: its fetcher does not wait
    await wait_until(lambda: len(ledger.runs()) == 1)
    frozen = start_worker(workers, ledger, concurrency=10)
    await wait_until(lambda: fetchers_waiting(app, 1))
    job = await add_jobs(app, 1, 6.0)
    await wait_until(lambda: len(ledger.runs()) == 2)
    os.kill(frozen.pid, signal.SIGSTOP)
    # The lock of its running job lapses and the healthy worker's stalled check requeues the job (a first stall),
    # with the stopped worker's fetch still queued behind its wait: it must not take the job back (a second
    # stall would fail it for good).
    await asyncio.sleep(RECOVERY_S)
    os.kill(frozen.pid, signal.SIGCONT)
    histogram = await assert_invariants(app, ledger, long | job)
    assert histogram == {1: 1, 2: 1}, histogram  # the interrupted job ran again, on the healthy worker
    (job_id,) = job
    assert [pid for pid, _ in ledger.runs()[job_id]] == [frozen.pid, healthy.pid]


@pytest.fixture
async def short_lock_app(redis_url: str) -> AsyncIterator[Conveyor]:
    """An app whose workers hold locks for 1 s and leave stalled checks to the test (one at start, then a minute)."""
    settings = load_settings(
        redis_url=redis_url,
        conveyor_shutdown_grace_s=2,
        conveyor_lock_duration_ms=1000,
        conveyor_stalled_interval_ms=60_000,
    )
    conveyor = Conveyor(settings)
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


async def stalled_check(app: Conveyor) -> list[str]:
    """One round of BullMQ's stalled check, as another worker would run it (its once-per-interval guard lifted)."""
    queue = app.queue(QUEUE)
    await app.client.delete(queue.keys.stalled_check)
    return await queue.scripts.move_stalled_jobs_to_wait(
        max_stalled=1, timestamp=int(time.time() * 1000), interval_ms=60_000
    )


async def test_a_job_taken_again_while_its_stale_run_goes_on_keeps_its_lock_and_completes(
    short_lock_app: Conveyor,
) -> None:
    app = short_lock_app
    runs: list[str] = []
    gates = [threading.Event(), threading.Event()]

    @app.handler(QUEUE, "gated")
    def gated(_: Any, ctx: JobContext) -> int:
        run = len(runs)
        runs.append(ctx.job.id)
        gates[run].wait(20)
        return run

    queue = app.queue(QUEUE)
    try:
        async with running(app.worker([QUEUE])):
            job_id = await app.add(QUEUE, "gated", {})
            await wait_until(lambda: len(runs) == 1)
            # The lock lapses (as while this worker was stopped) and another worker's stalled check requeues
            # the job; this worker takes it again under a new lock while the stale run is still going.
            await stalled_check(app)
            await app.client.delete(queue.keys.lock(job_id))
            assert await stalled_check(app) == [job_id]
            await wait_until(lambda: len(runs) == 2)
            gates[0].set()  # the stale run ends: its completion is refused, and the new run must stay tracked
            await asyncio.sleep(1.5)  # past the 1 s lock: only the renewer keeps the new run's lock
            assert await stalled_check(app) == []
            assert await stalled_check(app) == []  # a lapsed lock would be requeued (and fail: stalled twice)
            gates[1].set()
            await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=10)
    finally:
        for gate in gates:
            gate.set()
