"""Every state change of an active job presents its lock token: a worker that lost the lock cannot finish it."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from conveyor.queue.job import JobState
from conveyor.queue.options import keep_jobs
from conveyor.queue.queue import Queue
from conveyor.redis.connection import RedisTarget
from conveyor.redis.lane import close_lane
from conveyor.redis.script_errors import LockMismatchError, LockMissingError, ScriptError


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    client: Redis = RedisTarget(url=redis_url).client()
    yield Queue(client, f"locks-{uuid.uuid4().hex[:8]}")
    close_lane(client)
    await client.aclose()


async def finish(queue: Queue, job_id: str, token: str) -> None:
    await queue.scripts.move_to_finished(
        job_id=job_id, token=token, target="completed", value="1", timestamp=int(time.time() * 1000),
        keep=keep_jobs(None), attempts=1, fetch_next=False, lock_ms=5000, worker="w",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("lock_lost", "error"), [("to another worker", LockMismatchError), ("expired", LockMissingError)]
)
async def test_a_completion_without_the_lock_is_refused_and_the_job_stays_active(
    queue: Queue, lock_lost: str, error: type[ScriptError]
) -> None:
    job_id = await queue.add("job", {})
    fetched = await queue.scripts.move_to_active(
        token="ours", lock_ms=5000, worker="w", timestamp=int(time.time() * 1000)
    )
    assert fetched.job_id == job_id
    lock = f"{queue.keys.job(job_id)}:lock"
    if lock_lost == "expired":
        await queue.client.delete(lock)
    else:
        await queue.client.set(lock, "theirs", px=5000)  # the stalled check requeued it and another worker took it
    with pytest.raises(error):
        await finish(queue, job_id, "ours")
    assert await queue.state_of(job_id) is JobState.ACTIVE
    if lock_lost != "expired":
        await finish(queue, job_id, "theirs")  # the lock holder still can
        assert await queue.state_of(job_id) is JobState.COMPLETED
