"""`SyncConveyor`: the blocking facade for synchronous callers, over a real Redis."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import Any

import pytest

from conveyor import Conveyor, JobState, NewJob, load_settings
from conveyor.app import NotConnectedError
from conveyor.app.sync import SyncConveyor, SyncConveyorError
from conveyor.queue.errors import (
    InvalidPayloadError,
    JobNotFoundError,
    JobStateError,
    PayloadTooLargeError,
    UnknownQueueError,
)
from conveyor.redis.errors import RedisUnavailableError
from tests.worker.conftest import running, state_is, wait_until

QUEUE = "background"


def facade_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "conveyor-sync"]


def unreachable_facade() -> SyncConveyor:
    """A facade whose Redis URL points at a local port nobody listens on (connecting retries ~1.4 s)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return SyncConveyor(Conveyor(load_settings(redis_url=f"redis://127.0.0.1:{port}/0")))


@pytest.fixture
def conveyor(redis_url: str) -> Iterator[SyncConveyor]:
    """A facade over a fresh, unconnected app on the test's empty Redis."""
    facade = SyncConveyor(Conveyor(load_settings(redis_url=redis_url)))
    yield facade
    facade.close()


@pytest.fixture
async def async_app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A second app, connected in the test's own loop, to run workers beside the facade."""
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    await app.connect()
    yield app
    await app.close()


def test_add_returns_an_id_and_get_job_reads_the_job_back(conveyor: SyncConveyor) -> None:
    job_id = conveyor.add(QUEUE, "index-file", {"filePath": "src/a.ts"}, priority="high", attempts=2)
    job = conveyor.get_job(QUEUE, job_id)
    assert (job.id, job.type, job.data) == (job_id, "index-file", {"filePath": "src/a.ts"})
    assert (job.priority, job.max_attempts, job.state) == (2, 2, JobState.WAITING)


def test_the_facade_connects_on_first_use_and_close_stops_its_thread(redis_url: str) -> None:
    before = len(facade_threads())
    app = Conveyor(load_settings(redis_url=redis_url))
    facade = SyncConveyor(app)
    assert len(facade_threads()) == before  # nothing runs until the first call
    facade.counts(QUEUE)
    assert len(facade_threads()) == before + 1
    assert app.client is not None
    facade.close()
    assert len(facade_threads()) == before
    with pytest.raises(NotConnectedError):
        _ = app.client


def test_close_without_use_and_a_second_close_are_harmless(redis_url: str) -> None:
    facade = SyncConveyor(Conveyor(load_settings(redis_url=redis_url)))
    facade.close()
    facade.close()


def test_a_closed_facade_refuses_calls(conveyor: SyncConveyor) -> None:
    conveyor.counts(QUEUE)
    conveyor.close()
    with pytest.raises(SyncConveyorError, match="closed"):
        conveyor.counts(QUEUE)


def test_the_context_manager_closes_the_facade(redis_url: str) -> None:
    before = len(facade_threads())
    with SyncConveyor(Conveyor(load_settings(redis_url=redis_url))) as facade:
        facade.add(QUEUE, "ok")
    assert len(facade_threads()) == before
    with pytest.raises(SyncConveyorError):
        facade.add(QUEUE, "ok")


def test_connect_fails_fast_when_redis_is_unreachable_and_a_later_call_retries() -> None:
    facade = unreachable_facade()
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError):
            facade.connect()
        assert time.monotonic() - started < 10
        with pytest.raises(RedisUnavailableError):
            facade.add(QUEUE, "ok")
    finally:
        facade.close()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.add("emails", "send"), UnknownQueueError),
        (lambda c: c.add(QUEUE, "ok", {"raw": b"bytes"}), InvalidPayloadError),
        (lambda c: c.add(QUEUE, "ok", "x" * (1024 * 1024)), PayloadTooLargeError),
        (lambda c: c.get_job(QUEUE, "nope"), JobNotFoundError),
        (lambda c: c.retry(QUEUE, c.add(QUEUE, "ok")), JobStateError),
        (lambda c: c.promote(QUEUE, c.add(QUEUE, "ok")), JobStateError),
    ],
    ids=["unknown-queue", "not-json", "too-large", "missing-job", "retry-pending", "promote-pending"],
)
def test_errors_of_the_async_api_are_raised_in_the_calling_thread(
    conveyor: SyncConveyor, call: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        call(conveyor)


def test_many_threads_can_share_one_facade(conveyor: SyncConveyor) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: conveyor.add(QUEUE, "ok", {"i": i}), range(40)))
    assert len(set(ids)) == 40
    assert conveyor.counts(QUEUE).prioritized == 40
    assert len(facade_threads()) == 1


def test_add_bulk_and_jobs_page_through_the_queue(conveyor: SyncConveyor) -> None:
    ids = conveyor.add_bulk(QUEUE, [NewJob("ok", {"i": i}) for i in range(5)])
    first, second = conveyor.jobs(QUEUE, JobState.PRIORITIZED, 0, 3), conveyor.jobs(QUEUE, JobState.PRIORITIZED, 3, 3)
    assert [job.id for job in first + second] == ids


def test_pause_and_resume_show_in_counts(conveyor: SyncConveyor) -> None:
    conveyor.pause(QUEUE)
    assert conveyor.counts(QUEUE).paused
    conveyor.resume(QUEUE)
    assert not conveyor.counts(QUEUE).paused


def test_promote_remove_cancel_and_clear_manage_jobs(conveyor: SyncConveyor) -> None:
    delayed = conveyor.add(QUEUE, "ok", delay_ms=60_000)
    conveyor.promote(QUEUE, delayed)
    assert conveyor.get_job(QUEUE, delayed).state is JobState.WAITING
    conveyor.remove(QUEUE, delayed)
    assert conveyor.cancel(QUEUE, conveyor.add(QUEUE, "ok", delay_ms=60_000)) is JobState.DELAYED
    conveyor.add(QUEUE, "ok")
    conveyor.clear(QUEUE)
    assert conveyor.counts(QUEUE).pending == 0


def test_queue_names_are_the_apps(conveyor: SyncConveyor) -> None:
    assert conveyor.queue_names == ["indexing", "ai-processing", "background"]


async def test_an_app_already_connected_elsewhere_is_refused(async_app: Conveyor) -> None:
    facade = SyncConveyor(async_app)
    try:
        with pytest.raises(SyncConveyorError, match="not connected"):
            await asyncio.to_thread(facade.counts, QUEUE)
    finally:
        await asyncio.to_thread(facade.close)
    assert (await async_app.queue(QUEUE).counts()).pending == 0  # the async app still works


async def test_jobs_added_through_the_facade_are_run_by_a_worker_and_retried(
    async_app: Conveyor, conveyor: SyncConveyor
) -> None:
    runs: list[int] = []

    @async_app.handler(QUEUE, "flaky")
    async def flaky(payload: dict[str, Any]) -> int:
        runs.append(payload["n"])
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        return payload["n"]

    queue = async_app.queue(QUEUE)
    async with running(async_app.worker([QUEUE])):
        job_id = await asyncio.to_thread(conveyor.add, QUEUE, "flaky", {"n": 7})
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
        assert await asyncio.to_thread(conveyor.retry_all_failed, QUEUE) == 1
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
        workers = await asyncio.to_thread(conveyor.workers)
    assert runs == [7, 7]
    assert (await asyncio.to_thread(conveyor.get_job, QUEUE, job_id)).result == 7
    assert len(workers) == 1
    assert workers[0].queues == {QUEUE: 2}


async def test_retry_through_the_facade_moves_a_failed_job_back(async_app: Conveyor, conveyor: SyncConveyor) -> None:
    @async_app.handler(QUEUE, "boom")
    async def boom(payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    queue = async_app.queue(QUEUE)
    async with running(async_app.worker([QUEUE])):
        job_id = await asyncio.to_thread(conveyor.add, QUEUE, "boom")
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    await asyncio.to_thread(conveyor.retry, QUEUE, job_id)
    job = await asyncio.to_thread(conveyor.get_job, QUEUE, job_id)
    assert (job.state, job.attempts_made) == (JobState.WAITING, 0)


def test_close_cancels_a_call_still_waiting_for_redis() -> None:
    facade = unreachable_facade()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            facade.add(QUEUE, "ok")
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    facade.close()
    caller.join(5)
    assert time.monotonic() - started < 1
    assert [type(exc) for exc in outcome] == [CancelledError]
