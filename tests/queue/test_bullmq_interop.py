"""BullMQ interop: Conveyor writes exactly BullMQ's key layout, and the stock `bullmq` package and Conveyor
read and run each other's jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bullmq import Job as BullJob
from bullmq import Queue as BullQueue
from bullmq import Worker as BullWorker

from conveyor import Conveyor, JobState
from tests.queue.conftest import QUEUE, finish, running, state_is, wait_until

STOCK = "stock"  # a queue only the stock package writes, to compare layouts with


@pytest.fixture
async def stock(redis_url: str) -> AsyncIterator[dict[str, BullQueue]]:
    """Stock BullMQ producers on our queue and on a queue of their own."""
    queues = {name: BullQueue(name, {"connection": redis_url}) for name in (QUEUE, STOCK)}
    yield queues
    for queue in queues.values():
        await queue.close()


async def layout(app: Conveyor, queue: str, ids: Sequence[str] = ()) -> dict[str, str]:
    """Each key of a queue, by its suffix after `bull:<queue>:` (the job ids in `ids` shown as `job <n>`), and
    its Redis type."""
    prefix = f"bull:{queue}:"
    names = {job_id: f"job {n}" for n, job_id in enumerate(ids)}
    suffixes = [key.removeprefix(prefix) for key in await app.client.keys(prefix + "*")]
    return {names.get(suffix, suffix): await app.client.type(prefix + suffix) for suffix in suffixes}


async def test_added_jobs_are_stored_in_bullmq_key_layout(app: Conveyor) -> None:
    now = await app.add(QUEUE, "ok", {"n": 1})
    later = await app.add(QUEUE, "ok", {"n": 2}, delay_ms=60_000)
    assert await layout(app, QUEUE) == {
        now: "hash",
        later: "hash",
        "prioritized": "zset",
        "delayed": "zset",
        "events": "stream",
        "meta": "hash",
        "id": "string",
        "pc": "string",  # the priority counter
        "marker": "zset",  # wakes blocked workers
    }
    fields = await app.client.hgetall(f"bull:{QUEUE}:{later}")
    assert set(fields) == {"name", "data", "opts", "timestamp", "priority", "delay"}
    assert (fields["name"], fields["data"], fields["priority"], fields["delay"]) == ("ok", '{"n":2}', "3", "60000")
    assert await app.client.zscore(f"bull:{QUEUE}:prioritized", now) is not None
    assert await app.client.zscore(f"bull:{QUEUE}:delayed", later) is not None
    assert await app.client.get(f"bull:{QUEUE}:id") == "2"  # BullMQ's script counts adds, even of ids made by us


async def test_added_jobs_are_announced_on_the_events_stream(app: Conveyor) -> None:
    now = await app.add(QUEUE, "ok")
    later = await app.add(QUEUE, "ok", delay_ms=60_000)
    events = [fields for _, fields in await app.client.xrange(f"bull:{QUEUE}:events")]
    assert {"event": "added", "jobId": now, "name": "ok"} in events
    assert any(event["event"] == "delayed" and event["jobId"] == later for event in events)


async def test_conveyor_and_the_stock_package_write_the_same_keys_and_fields(
    app: Conveyor, stock: dict[str, BullQueue]
) -> None:
    ours = [await app.add(QUEUE, "ok", {"n": 1}), await app.add(QUEUE, "ok", {"n": 2}, delay_ms=60_000)]
    theirs = [
        (await stock[STOCK].add("ok", {"n": 1}, {"priority": 3})).id,
        (await stock[STOCK].add("ok", {"n": 2}, {"priority": 3, "delay": 60_000})).id,
    ]
    assert theirs == ["1", "2"]  # the stock package's ids come from BullMQ's counter; ours are made before sending
    assert await layout(app, QUEUE, ours) == await layout(app, STOCK, theirs)
    for our_id, their_id in zip(ours, theirs, strict=True):
        our_fields = await app.client.hgetall(f"bull:{QUEUE}:{our_id}")
        their_fields = await app.client.hgetall(f"bull:{STOCK}:{their_id}")
        assert set(our_fields) == set(their_fields)
        for name in ("name", "data", "priority", "delay"):
            assert our_fields[name] == their_fields[name]


async def test_a_job_added_by_the_stock_package_is_processed_by_our_worker(
    app: Conveyor, stock: dict[str, BullQueue]
) -> None:
    queue = app.queue(QUEUE)
    job = await stock[QUEUE].add("ok", {"filePath": "src/a.ts"}, {"attempts": 2})
    job_id = str(job.id)
    waiting = await queue.get_job(job_id)
    assert (waiting.type, waiting.data, waiting.state, waiting.max_attempts) == (
        "ok", {"filePath": "src/a.ts"}, JobState.WAITING, 2
    )  # fmt: skip
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    assert (await queue.get_job(job_id)).result == {"filePath": "src/a.ts"}
    assert (await BullJob.fromId(stock[QUEUE], job_id)).returnvalue == {"filePath": "src/a.ts"}


async def test_a_job_we_add_is_read_by_the_stock_package_with_the_same_name_data_and_options(
    app: Conveyor, stock: dict[str, BullQueue]
) -> None:
    job_id = await app.add(QUEUE, "ok", {"files": ["a.ts", "b.ts"], "force": True}, attempts=3, priority="high")
    job = await BullJob.fromId(stock[QUEUE], job_id)
    assert job is not None
    assert (job.name, job.data, job.priority) == ("ok", {"files": ["a.ts", "b.ts"], "force": True}, 2)
    assert job.opts["attempts"] == 3
    assert await stock[QUEUE].getJobState(job_id) == "prioritized"
    assert (await stock[QUEUE].getJobCounts("prioritized"))["prioritized"] == 1


async def test_a_job_failed_by_our_worker_is_read_by_the_stock_package(
    app: Conveyor, stock: dict[str, BullQueue]
) -> None:
    [job_id] = await finish(app, "boom")
    job = await BullJob.fromId(stock[QUEUE], job_id)
    assert job is not None
    assert "boom" in job.failedReason
    assert job.attemptsMade == 1
    assert await stock[QUEUE].getJobState(job_id) == "failed"


async def test_a_stock_worker_processes_a_job_we_add(app: Conveyor, redis_url: str) -> None:
    seen: list[tuple[str, Any]] = []

    async def process(job: BullJob, token: str) -> dict[str, Any]:
        seen.append((job.name, job.data))
        return {"doubled": job.data["n"] * 2}

    queue = app.queue(QUEUE)
    job_id = await app.add(QUEUE, "double", {"n": 21})
    worker = BullWorker(QUEUE, process, {"connection": redis_url})
    try:
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    finally:
        await asyncio.wait_for(worker.close(), 10)
    assert seen == [("double", {"n": 21})]
    job = await queue.get_job(job_id)
    assert job.result == {"doubled": 42}
    assert job.attempts_made == 1
