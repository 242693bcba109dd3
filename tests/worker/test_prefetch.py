"""Prefetching: while a queue has a backlog of short jobs, a worker takes a few jobs ahead of a free slot."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, NewJob, load_settings
from conveyor.worker.runner import QueueRunner
from tests.support import running, wait_until
from tests.worker.conftest import state_is


@pytest.fixture
async def fast_app(redis_url: str) -> AsyncIterator[Conveyor]:
    settings = load_settings(
        redis_url=redis_url,
        conveyor_shutdown_grace_s=2,
        conveyor_queues={"fast": {"concurrency": 8, "prefetch": 4}, "plain": {"concurrency": 8, "prefetch": 0}},
    )
    app = Conveyor(settings)
    await app.connect()
    yield app
    await app.close()


def counting_handler(app: Conveyor, queue: str, ran: Counter[str], seconds: float) -> None:
    @app.handler(queue, "short")
    async def short(_: Any, ctx: JobContext) -> None:
        ran[ctx.job.id] += 1
        await asyncio.sleep(seconds)


async def most_prefetched(runner: QueueRunner, until: asyncio.Event, seen: list[int]) -> None:
    while not until.is_set():
        seen.append(len(runner.prefetched))
        await asyncio.sleep(0.001)


@pytest.mark.parametrize(("queue", "limit"), [("fast", 4), ("plain", 0)])
async def test_backlog_of_short_jobs_is_prefetched_up_to_the_limit_and_each_job_runs_once(
    fast_app: Conveyor, queue: str, limit: int
) -> None:
    ran: Counter[str] = Counter()
    counting_handler(fast_app, queue, ran, 0.002)
    ids = await fast_app.add_bulk(queue, [NewJob("short", {}) for _ in range(600)])
    worker = fast_app.worker([queue])
    done, seen = asyncio.Event(), list[int]()
    async with running(worker):
        watcher = asyncio.create_task(most_prefetched(worker.runners[0], done, seen))
        await wait_until(lambda: len(ran) == 600, timeout=60)
        done.set()
        await watcher
    assert max(seen) == limit  # prefetching happened, and never beyond the limit
    assert set(ran) == set(ids)
    assert set(ran.values()) == {1}
    counts = await fast_app.queue(queue).counts()
    assert (counts.completed, counts.active, counts.waiting) == (600, 0, 0)


async def test_shutdown_hands_prefetched_jobs_back_to_waiting_at_once(fast_app: Conveyor) -> None:
    ran: Counter[str] = Counter()
    counting_handler(fast_app, "fast", ran, 0.005)
    ids = await fast_app.add_bulk("fast", [NewJob("short", {}) for _ in range(3000)])
    queue = fast_app.queue("fast")
    worker = fast_app.worker(["fast"])
    async with running(worker):
        await wait_until(lambda: worker.runners[0].prefetched, interval=0.001)
    counts = await queue.counts()
    assert counts.active == 0  # nothing left locked for the stalled check to find
    assert counts.completed == len(ran)
    assert counts.completed + counts.waiting == 3000
    async with running(fast_app.worker(["fast"])):
        await wait_until(lambda: len(ran) == 3000, timeout=60)
    assert set(ran) == set(ids)
    assert set(ran.values()) == {1}


async def test_cancelling_a_prefetched_job_fails_it_without_running_it(fast_app: Conveyor) -> None:
    ran: Counter[str] = Counter()
    hold, release = asyncio.Event(), asyncio.Event()
    blocked: list[str] = []

    @fast_app.handler("fast", "short")
    async def short(_: Any, ctx: JobContext) -> None:
        ran[ctx.job.id] += 1
        await asyncio.sleep(0.002)
        if hold.is_set():  # once the buffer has filled, every slot blocks: prefetched jobs stay prefetched
            blocked.append(ctx.job.id)
            await release.wait()

    await fast_app.add_bulk("fast", [NewJob("short", {}) for _ in range(400)])
    queue = fast_app.queue("fast")
    worker = fast_app.worker(["fast"])
    async with running(worker):
        runner = worker.runners[0]
        await wait_until(lambda: runner.prefetched, interval=0.001)
        hold.set()
        await wait_until(lambda: len(blocked) == 8 and runner.prefetched)
        victim = runner.prefetched[-1]
        await queue.cancel(victim)
        await wait_until(lambda: runner.active[victim].ctx.cancel_requested)
        release.set()
        await wait_until(lambda: state_is(queue, victim, JobState.FAILED))
    job = await queue.get_job(victim)
    assert victim not in ran
    assert "cancelled before it started" in (job.failed_reason or "")
