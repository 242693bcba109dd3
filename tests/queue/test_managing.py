"""Managing a queue: pause and resume, clear, retry, promote, remove and cancel."""

from __future__ import annotations

import asyncio

import pytest

from conveyor import Conveyor, JobState
from conveyor.queue.errors import JobNotFoundError, JobStateError, QueueBusyError
from tests.queue.conftest import QUEUE, Gate, finish, running, state_is, wait_until

PENDING = (JobState.WAITING,)


async def test_pause_sets_and_resume_clears_the_paused_flag(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await queue.pause()
    assert await queue.is_paused()
    assert (await queue.counts()).paused
    await queue.resume()
    assert not await queue.is_paused()
    assert not (await queue.counts()).paused


async def test_pause_affects_only_its_own_queue(app: Conveyor) -> None:
    await app.queue(QUEUE).pause()
    assert not await app.queue("indexing").is_paused()


async def test_a_paused_queue_starts_no_job_until_resumed(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await queue.pause()
    job_id = await app.add(QUEUE, "ok")
    async with running(app.worker([QUEUE])):
        await asyncio.sleep(0.3)  # time enough for an idle worker to start it, were the queue running
        assert await queue.state_of(job_id) is JobState.WAITING
        await queue.resume()
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))


async def test_clear_refuses_while_a_job_is_active_and_deletes_nothing(app: Conveyor, gate: Gate) -> None:
    queue = app.queue(QUEUE)
    async with running(app.worker([QUEUE], {QUEUE: 1})):
        active = await app.add(QUEUE, "block")
        waiting = await app.add(QUEUE, "ok")
        await wait_until(lambda: state_is(queue, active, JobState.ACTIVE))
        with pytest.raises(QueueBusyError, match="force"):
            await queue.clear()
        assert await queue.state_of(waiting) is JobState.WAITING
        assert not await queue.is_paused()
        gate.open()


async def test_clear_with_force_deletes_active_jobs_too_and_leaves_every_count_at_zero(
    app: Conveyor, gate: Gate
) -> None:
    queue = app.queue(QUEUE)
    await finish(app, "ok", 2)
    await finish(app, "boom")
    await app.add(QUEUE, "ok", delay_ms=60_000)
    async with running(app.worker([QUEUE], {QUEUE: 1})):
        active = await app.add(QUEUE, "block")
        await app.add(QUEUE, "ok")
        await wait_until(lambda: state_is(queue, active, JobState.ACTIVE))
        await queue.clear(force=True)
        counts = await queue.counts()
        gate.open()
    assert (counts.waiting, counts.active, counts.completed, counts.failed) == (0, 0, 0, 0)
    assert (counts.delayed, counts.prioritized, counts.waiting_children, counts.paused) == (0, 0, 0, False)
    with pytest.raises(JobNotFoundError):
        await queue.get_job(active)


async def test_clear_leaves_no_key_of_the_queue_behind(app: Conveyor) -> None:
    await finish(app, "ok")
    await app.add(QUEUE, "ok", delay_ms=60_000)
    await app.add(QUEUE, "ok")
    await app.add("indexing", "other")
    await app.queue(QUEUE).clear()
    assert not [key for key in await app.client.keys("*") if key.startswith(f"bull:{QUEUE}:")]
    assert (await app.queue("indexing").counts()).pending == 1  # other queues are untouched


async def test_clear_keeps_a_paused_queue_paused(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await app.add(QUEUE, "ok")
    await queue.pause()
    await queue.clear()
    assert await queue.is_paused()
    assert (await queue.counts()).pending == 0


async def test_clear_of_a_running_queue_leaves_it_running(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await app.add(QUEUE, "ok")
    await queue.clear()
    assert not await queue.is_paused()
    async with running(app.worker([QUEUE])):
        job_id = await app.add(QUEUE, "ok")
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))


async def test_retry_moves_a_failed_job_back_to_pending_with_attempts_reset(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    [job_id] = await finish(app, "boom")
    await queue.retry(job_id)
    job = await queue.get_job(job_id)
    assert job.state in PENDING
    assert job.attempts_made == 0
    assert job.failed_reason is None
    assert job.finished_at is None
    assert (await queue.counts()).failed == 0


async def test_a_retried_job_runs_again(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    [job_id] = await finish(app, "boom")
    await queue.retry(job_id)
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    assert len((await queue.get_job(job_id)).history) == 2  # the first run's record is kept


@pytest.mark.parametrize("state", ["completed", "pending", "delayed"])
async def test_retry_of_a_job_that_has_not_failed_is_refused(app: Conveyor, state: str) -> None:
    queue = app.queue(QUEUE)
    if state == "completed":
        [job_id] = await finish(app, "ok")
    else:
        job_id = await app.add(QUEUE, "ok", delay_ms=60_000 if state == "delayed" else 0)
    before = await queue.state_of(job_id)
    with pytest.raises(JobStateError, match="not failed"):
        await queue.retry(job_id)
    assert await queue.state_of(job_id) is before


async def test_retry_of_a_missing_job_raises_job_not_found(app: Conveyor) -> None:
    with pytest.raises(JobNotFoundError):
        await app.queue(QUEUE).retry("nope")


async def test_retry_all_failed_returns_how_many_it_moved(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await finish(app, "boom", 3)
    await finish(app, "ok")
    assert await queue.retry_all_failed() == 3
    counts = await queue.counts()
    assert (counts.failed, counts.pending, counts.completed) == (0, 3, 1)
    assert await queue.retry_all_failed() == 0


async def test_retry_all_failed_works_in_batches(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    await finish(app, "boom", 5)
    assert await queue.retry_all_failed(batch=2) == 5
    assert (await queue.counts()).failed == 0


async def test_promote_makes_a_delayed_job_pending_now(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    job_id = await app.add(QUEUE, "ok", delay_ms=3_600_000)
    await queue.promote(job_id)
    assert await queue.state_of(job_id) in PENDING
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))


async def test_promote_of_a_pending_job_is_refused(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    job_id = await app.add(QUEUE, "ok")
    with pytest.raises(JobStateError, match="not delayed"):
        await queue.promote(job_id)
    assert await queue.state_of(job_id) is JobState.WAITING


@pytest.mark.parametrize("delay_ms", [0, 60_000], ids=["pending", "delayed"])
async def test_remove_deletes_a_job_that_is_not_active(app: Conveyor, delay_ms: int) -> None:
    queue = app.queue(QUEUE)
    job_id = await app.add(QUEUE, "ok", delay_ms=delay_ms)
    await queue.remove(job_id)
    with pytest.raises(JobNotFoundError):
        await queue.get_job(job_id)
    assert (await queue.counts()).pending == 0


async def test_remove_deletes_a_finished_job_and_its_logs(app: Conveyor) -> None:
    queue = app.queue(QUEUE)
    [job_id] = await finish(app, "ok")
    await queue.remove(job_id)
    assert not [key for key in await app.client.keys("*") if key.startswith(f"bull:{QUEUE}:{job_id}")]
    assert (await queue.counts()).completed == 0


async def test_remove_of_an_active_job_is_refused_and_it_keeps_running(app: Conveyor, gate: Gate) -> None:
    queue = app.queue(QUEUE)
    async with running(app.worker([QUEUE])):
        job_id = await app.add(QUEUE, "block")
        await wait_until(lambda: state_is(queue, job_id, JobState.ACTIVE))
        with pytest.raises(JobStateError, match="cancel it instead"):
            await queue.remove(job_id)
        gate.open()
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))


async def test_remove_of_a_missing_job_raises_job_not_found(app: Conveyor) -> None:
    with pytest.raises(JobNotFoundError):
        await app.queue(QUEUE).remove("nope")


@pytest.mark.parametrize(
    ("delay_ms", "state"), [(0, JobState.WAITING), (60_000, JobState.DELAYED)], ids=["pending", "delayed"]
)
async def test_cancel_of_a_pending_job_removes_it_and_returns_its_state(
    app: Conveyor, delay_ms: int, state: JobState
) -> None:
    queue = app.queue(QUEUE)
    job_id = await app.add(QUEUE, "ok", delay_ms=delay_ms)
    assert await queue.cancel(job_id) is state
    assert await queue.state_of(job_id) is JobState.UNKNOWN


@pytest.mark.parametrize("job_type", ["ok", "boom"])
async def test_cancel_of_a_finished_job_is_refused_and_keeps_it(app: Conveyor, job_type: str) -> None:
    queue = app.queue(QUEUE)
    [job_id] = await finish(app, job_type)
    with pytest.raises(JobStateError, match="nothing to cancel"):
        await queue.cancel(job_id)
    assert (await queue.get_job(job_id)).id == job_id


async def test_cancel_of_a_missing_job_raises_job_not_found(app: Conveyor) -> None:
    with pytest.raises(JobNotFoundError):
        await app.queue(QUEUE).cancel("nope")
