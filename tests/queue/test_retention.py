"""Retention: a queue keeps only the newest finished jobs it is configured to keep."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor import Conveyor, JobState, load_settings
from conveyor.queue.errors import JobNotFoundError
from conveyor.redis.keys import QUEUE_SUFFIXES
from tests.queue.conftest import Gate, register_test_handlers, running, wait_until

KEEPING = "keeping"


@pytest.fixture
async def keeping_app(redis_url: str) -> AsyncIterator[Conveyor]:
    """An app with a custom queue that keeps 2 completed and 1 failed job."""
    queues = {KEEPING: {"keep_completed": 2, "keep_failed": 1}}
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_queues=queues, conveyor_shutdown_grace_s=2))
    register_test_handlers(app, Gate(), KEEPING)
    await app.connect()
    yield app
    await app.close()


async def run_all(app: Conveyor, job_type: str, count: int, **options: Any) -> list[str]:
    """Add `count` jobs one after the other, each once the previous one has finished (finished jobs may be
    gone), so they finish in distinct milliseconds: BullMQ orders finished jobs by that time, then by id."""
    ids = []
    async with running(app.worker([KEEPING], {KEEPING: 1})):
        for i in range(count):
            ids.append(await app.add(KEEPING, job_type, {"i": i}, **options))
            await wait_until(lambda: _none_pending(app))
            await asyncio.sleep(0.002)  # the next one finishes in a later millisecond
    return ids


async def _none_pending(app: Conveyor) -> bool:
    counts = await app.queue(KEEPING).counts()
    return counts.pending == 0 and counts.active == 0


async def test_after_five_completions_only_the_two_newest_remain(keeping_app: Conveyor) -> None:
    queue = keeping_app.queue(KEEPING)
    ids = await run_all(keeping_app, "ok", 5)
    assert (await queue.counts()).completed == 2
    assert [job.id for job in await queue.jobs(JobState.COMPLETED)] == [ids[4], ids[3]]
    for old in ids[:3]:
        with pytest.raises(JobNotFoundError):
            await queue.get_job(old)


async def test_after_three_failures_only_the_newest_failed_job_remains(keeping_app: Conveyor) -> None:
    queue = keeping_app.queue(KEEPING)
    ids = await run_all(keeping_app, "boom", 3)
    assert [job.id for job in await queue.jobs(JobState.FAILED)] == [ids[2]]


async def test_keep_completed_zero_on_the_job_removes_it_as_soon_as_it_completes(keeping_app: Conveyor) -> None:
    queue = keeping_app.queue(KEEPING)
    [job_id] = await run_all(keeping_app, "ok", 1, keep_completed=0)
    assert (await queue.counts()).completed == 0
    assert await queue.state_of(job_id) is JobState.UNKNOWN


async def test_retention_removes_the_job_hash_not_just_its_entry(keeping_app: Conveyor) -> None:
    ids = await run_all(keeping_app, "ok", 3)
    job_keys = {key for key in await keeping_app.client.keys(f"bull:{KEEPING}:*") if key.count(":") == 2}
    job_keys -= {f"bull:{KEEPING}:{suffix}" for suffix in QUEUE_SUFFIXES}
    assert job_keys == {f"bull:{KEEPING}:{job_id}" for job_id in ids[1:]}
