"""Batch handlers receive jobs in lists; each job still completes or fails on its own."""

from __future__ import annotations

from typing import Any

from conveyor import Batch, Conveyor, JobContext, JobState, NewJob, load_settings
from conveyor.config import QueueSettings
from tests.worker.conftest import running, wait_until


async def _app(redis_url: str) -> Conveyor:
    queues = {"batched": QueueSettings(concurrency=10, attempts=2)}
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_queues=queues))
    await app.connect()
    return app


async def test_jobs_arrive_in_batches_and_complete_individually(redis_url: str) -> None:
    app = await _app(redis_url)
    sizes: list[int] = []

    @app.handler("batched", "square", batch=Batch(max_size=5, max_wait_ms=200))
    async def square(payloads: list[dict[str, int]], contexts: list[JobContext]) -> list[int]:
        sizes.append(len(payloads))
        assert len({ctx.job.id for ctx in contexts}) == len(payloads)
        return [p["n"] ** 2 for p in payloads]

    try:
        queue = app.queue("batched")
        await queue.pause()
        ids = await app.add_bulk("batched", [NewJob("square", {"n": n}) for n in range(10)])
        async with running(app.worker(["batched"])):
            await queue.resume()
            await wait_until(lambda: _count(app, JobState.COMPLETED, 10))
        assert max(sizes) == 5
        assert sum(sizes) == 10
        results = {(await queue.get_job(i)).data["n"]: (await queue.get_job(i)).result for i in ids}
        assert results == {n: n * n for n in range(10)}
    finally:
        await app.close()


async def test_a_partial_failure_retries_only_the_failed_jobs(redis_url: str) -> None:
    app = await _app(redis_url)
    seen: list[list[int]] = []

    @app.handler("batched", "picky", batch=Batch(max_size=4, max_wait_ms=200))
    def picky(payloads: list[dict[str, int]]) -> list[Any]:
        seen.append([p["n"] for p in payloads])
        first_time = len(seen) == 1
        return [ValueError("odd") if p["n"] % 2 and first_time else p["n"] for p in payloads]

    try:
        queue = app.queue("batched")
        await queue.pause()
        ids = await app.add_bulk("batched", [NewJob("picky", {"n": n}) for n in range(4)])
        async with running(app.worker(["batched"])):
            await queue.resume()
            await wait_until(lambda: _count(app, JobState.COMPLETED, 4), timeout=15)
        assert sorted(seen[0]) == [0, 1, 2, 3]
        assert sorted(n for batch in seen[1:] for n in batch) == [1, 3]  # only the failed ones came back
        attempts = {(await queue.get_job(i)).data["n"]: (await queue.get_job(i)).attempts_made for i in ids}
        assert attempts == {0: 1, 1: 2, 2: 1, 3: 2}
    finally:
        await app.close()


async def test_a_batch_closes_after_max_wait(redis_url: str) -> None:
    app = await _app(redis_url)
    sizes: list[int] = []

    @app.handler("batched", "lonely", batch=Batch(max_size=50, max_wait_ms=100))
    async def lonely(payloads: list[dict[str, int]]) -> list[None]:
        sizes.append(len(payloads))
        return [None] * len(payloads)

    try:
        async with running(app.worker(["batched"])):
            await app.add("batched", "lonely", {})
            await wait_until(lambda: _count(app, JobState.COMPLETED, 1), timeout=5)
        assert sizes == [1]
    finally:
        await app.close()


async def _count(app: Conveyor, state: JobState, n: int) -> bool:
    counts = await app.queue("batched").counts()
    return getattr(counts, state.value) >= n
