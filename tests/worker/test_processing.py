"""A job goes in, a handler runs it, its result, progress and logs come back."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from conveyor import Conveyor, JobContext, JobState
from conveyor.queue.errors import InvalidPayloadError
from tests.worker.conftest import running, state_is, wait_until


async def test_job_is_processed_and_its_result_progress_and_logs_are_stored(app: Conveyor) -> None:
    @app.handler("background", "double")
    async def double(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
        ctx.progress({"step": 1, "of": 2})
        ctx.log("doubling")
        ctx.progress(100)
        return {"value": payload["n"] * 2}

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "double", {"n": 21})
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert job.result == {"value": 42}
    assert job.progress == 100
    assert job.logs == ["doubling"]
    assert job.attempts_made == 1
    assert job.processed_at is not None
    assert job.finished_at is not None
    assert job.type == "double"
    assert job.data == {"n": 21}


async def test_sync_handler_runs_in_a_thread_without_blocking_the_event_loop(app: Conveyor) -> None:
    threads: list[str] = []

    @app.handler("background", "block")
    def block(payload: dict[str, Any]) -> str:
        threads.append(threading.current_thread().name)
        time.sleep(0.5)
        return "done"

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "block")
        started = time.monotonic()
        ticks = 0
        while (await queue.state_of(job_id)) is not JobState.COMPLETED:
            await asyncio.sleep(0.01)
            ticks += 1
            assert time.monotonic() - started < 10
    assert threads
    assert threads[0] != threading.main_thread().name
    assert ticks > 20  # the loop kept running while the handler slept in its thread


class IndexFile(BaseModel):
    filePath: str  # noqa: N815 (the design's field name)
    force: bool = False


async def test_invalid_payload_is_refused_at_enqueue_naming_the_field_and_nothing_is_written(app: Conveyor) -> None:
    @app.handler("indexing", "index-file", payload=IndexFile)
    async def index_file(payload: IndexFile) -> str:
        return payload.filePath

    with pytest.raises(InvalidPayloadError) as refused:
        await app.add("indexing", "index-file", {"path": "src/index.ts"})
    assert "filePath" in str(refused.value)
    assert refused.value.fields == ["filePath"]
    counts = await app.queue("indexing").counts()
    assert counts.pending == 0


async def test_handler_receives_the_validated_model(app: Conveyor) -> None:
    seen: list[IndexFile] = []

    @app.handler("indexing", "index-file", payload=IndexFile)
    async def index_file(payload: IndexFile) -> str:
        seen.append(payload)
        return payload.filePath

    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        job_id = await app.add("indexing", "index-file", {"filePath": "src/index.ts"})
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    assert seen == [IndexFile(filePath="src/index.ts")]
    assert (await queue.get_job(job_id)).result == "src/index.ts"


async def test_result_that_is_not_json_fails_the_attempt(app: Conveyor) -> None:
    @app.handler("background", "bad-result")
    async def bad_result(payload: dict[str, Any]) -> object:
        return object()

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "bad-result")
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    assert "not JSON serializable" in ((await queue.get_job(job_id)).failed_reason or "")


async def test_result_holding_nan_fails_the_attempt_instead_of_storing_what_json_readers_refuse(app: Conveyor) -> None:
    @app.handler("background", "nan-result")
    async def nan_result(payload: dict[str, Any]) -> dict[str, float]:
        return {"score": float("nan")}

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "nan-result")
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED))
    job = await queue.get_job(job_id)
    assert "not JSON compliant" in (job.failed_reason or "")
    assert await queue.client.hget(queue.keys.job(job_id), "returnvalue") is None
