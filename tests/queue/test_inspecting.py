"""Reading a queue: counts per state, paged job lists in a documented order, and single jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from bullmq import FlowProducer
from bullmq import Queue as BullQueue

from conveyor import Conveyor, JobState
from conveyor.queue.errors import JobNotFoundError, JobStateError
from tests.queue.conftest import QUEUE, Gate, finish, running, state_is, wait_until

EPOCH = datetime.fromtimestamp(0, UTC)


@pytest.fixture
async def stock_queue(redis_url: str) -> AsyncIterator[BullQueue]:
    """The stock BullMQ producer on the same queue; it adds jobs without priority (BullMQ's `wait` list)."""
    queue = BullQueue(QUEUE, {"connection": redis_url})
    yield queue
    await queue.close()


async def pages(app: Conveyor, state: JobState, total: int, size: int) -> list[list[str]]:
    queue = app.queue(QUEUE)
    return [[job.id for job in await queue.jobs(state, start, size)] for start in range(0, total + size, size)]


async def finish_order(app: Conveyor, ids: list[str]) -> list[str]:
    """The ids newest first: by finish time, then (jobs finished in the same millisecond) by id, as Redis
    orders the finished sets. The finish times must follow the order the one-slot worker ran the jobs in."""
    queue = app.queue(QUEUE)
    finished = {job_id: (await queue.get_job(job_id)).finished_at or EPOCH for job_id in ids}
    assert [finished[job_id] for job_id in ids] == sorted(finished.values())
    return sorted(ids, key=lambda job_id: (finished[job_id], job_id), reverse=True)


async def test_counts_report_every_state_and_the_paused_flag(
    app: Conveyor, gate: Gate, redis_url: str, stock_queue: BullQueue
) -> None:
    queue = app.queue(QUEUE)
    await finish(app, "ok")
    await finish(app, "boom")
    async with running(app.worker([QUEUE], {QUEUE: 1})):
        active = await app.add(QUEUE, "block")
        await wait_until(lambda: state_is(queue, active, JobState.ACTIVE))
        await app.add(QUEUE, "ok")  # the only slot is busy: stays prioritized
        await app.add(QUEUE, "ok", delay_ms=60_000)
        await stock_queue.add("ok", {})  # no priority: BullMQ's wait list
        flows = FlowProducer({"connection": redis_url})
        await flows.add({"name": "parent", "queueName": QUEUE, "data": {},
                         "children": [{"name": "child", "queueName": "indexing", "data": {}}]})  # fmt: skip
        await flows.close()
        counts = await queue.counts()
        await queue.pause()
        paused = await queue.counts()
        gate.open()
    assert (counts.waiting, counts.active, counts.completed, counts.failed) == (2, 1, 1, 1)  # waiting: both
    assert (counts.delayed, counts.prioritized, counts.waiting_children) == (1, 1, 1)
    assert (counts.pending, counts.paused_jobs) == (3, 0)
    assert not counts.paused
    assert paused.paused
    assert (paused.waiting, paused.prioritized, paused.paused_jobs) == (2, 1, 2)  # a paused queue's still wait


async def test_counts_of_an_empty_queue_are_zero(app: Conveyor) -> None:
    counts = await app.queue(QUEUE).counts()
    assert counts.waiting == counts.active == counts.completed == counts.failed == counts.pending == 0
    assert not counts.paused


async def test_prioritized_jobs_page_oldest_first_without_overlap(app: Conveyor) -> None:
    ids = [await app.add(QUEUE, "ok", {"i": i}) for i in range(7)]
    assert await pages(app, JobState.PRIORITIZED, 7, 3) == [ids[0:3], ids[3:6], ids[6:7], []]


async def test_prioritized_jobs_list_in_the_order_they_will_run(app: Conveyor) -> None:
    low = await app.add(QUEUE, "ok", priority="low")
    critical = await app.add(QUEUE, "ok", priority="critical")
    normal = await app.add(QUEUE, "ok")
    assert [job.id for job in await app.queue(QUEUE).jobs(JobState.PRIORITIZED)] == [critical, normal, low]


async def test_delayed_jobs_page_soonest_due_first_without_overlap(app: Conveyor) -> None:
    ids = [await app.add(QUEUE, "ok", {"i": i}, delay_ms=60_000) for i in range(5)]
    assert await pages(app, JobState.DELAYED, 5, 2) == [ids[0:2], ids[2:4], ids[4:5], []]


async def test_waiting_jobs_page_oldest_first_without_overlap(app: Conveyor, stock_queue: BullQueue) -> None:
    ids = [(await stock_queue.add("ok", {"i": i})).id for i in range(7)]
    assert await pages(app, JobState.WAITING, 7, 3) == [ids[0:3], ids[3:6], ids[6:7], []]
    assert [job.data for job in await app.queue(QUEUE).jobs(JobState.WAITING, 0, 2)] == [{"i": 0}, {"i": 1}]


async def test_completed_jobs_page_newest_first_without_overlap(app: Conveyor) -> None:
    newest_first = await finish_order(app, await finish(app, "ok", 5))
    assert await pages(app, JobState.COMPLETED, 5, 2) == [newest_first[0:2], newest_first[2:4], newest_first[4:5], []]
    assert all(job.state is JobState.COMPLETED for job in await app.queue(QUEUE).jobs(JobState.COMPLETED))


async def test_failed_jobs_page_newest_first_without_overlap(app: Conveyor) -> None:
    newest_first = await finish_order(app, await finish(app, "boom", 4))
    assert await pages(app, JobState.FAILED, 4, 3) == [newest_first[0:3], newest_first[3:4], []]


async def test_listing_jobs_in_the_unknown_state_is_refused(app: Conveyor) -> None:
    with pytest.raises(JobStateError):
        await app.queue(QUEUE).jobs(JobState.UNKNOWN)


async def test_get_job_of_a_missing_id_raises_job_not_found_naming_queue_and_id(app: Conveyor) -> None:
    with pytest.raises(JobNotFoundError, match=r"No job 'nope' in queue 'background'") as caught:
        await app.queue(QUEUE).get_job("nope")
    assert (caught.value.queue, caught.value.job_id) == (QUEUE, "nope")


async def test_get_job_of_a_finished_job_has_its_result_and_times(app: Conveyor) -> None:
    [job_id] = await finish(app, "ok")
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.COMPLETED
    assert job.result == {"i": 0}
    assert job.created_at is not None
    assert job.processed_at is not None
    assert job.finished_at is not None
    assert job.created_at <= job.processed_at <= job.finished_at


async def test_get_job_of_a_failed_job_has_the_reason_and_attempt_history(app: Conveyor) -> None:
    [job_id] = await finish(app, "boom")
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.FAILED
    assert "boom" in (job.failed_reason or "")
    assert [record.attempt for record in job.history] == [1]
    assert "RuntimeError" in job.history[0].error + job.history[0].stacktrace


async def test_waiting_job_of_a_paused_queue_reads_as_waiting(app: Conveyor, stock_queue: BullQueue) -> None:
    job = await stock_queue.add("ok", {})
    queue = app.queue(QUEUE)
    await queue.pause()
    assert (await queue.get_job(job.id)).state is JobState.WAITING
    await queue.resume()
    assert (await queue.get_job(job.id)).state is JobState.WAITING


async def test_a_job_read_while_it_finishes_never_reads_as_completed_without_its_result(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    ids = [await app.add(QUEUE, "ok", {"n": n}) for n in range(400)]  # a race: many tries to catch it
    torn: list[str] = []
    async with running(app.worker([QUEUE], {QUEUE: 4})):
        pending = set(ids)
        while pending:
            for job_id in list(pending):
                job = await queue.get_job(job_id)
                if job.state is JobState.COMPLETED:
                    pending.discard(job_id)
                    if job.result is None or job.finished_at is None:
                        torn.append(job_id)
    assert torn == []
