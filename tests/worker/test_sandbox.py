"""Sandboxed handlers run in a child process with limits; failures there never take the worker down."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from conveyor import Conveyor, JobState, Sandbox
from conveyor.worker.sandbox import SandboxSetupError
from tests.worker import sandboxed_handlers as handlers
from tests.worker.conftest import running, state_is, wait_until


def _register(app: Conveyor) -> None:
    app.handler("background", "add", payload=handlers.Numbers, sandbox=Sandbox(memory_mb=512))(handlers.add_up)
    app.handler("background", "spin", sandbox=Sandbox(wall_s=1))(handlers.spin_forever)
    app.handler("background", "spin-long", sandbox=Sandbox())(handlers.spin_forever)
    app.handler("background", "hog", sandbox=Sandbox(memory_mb=256))(handlers.hog_memory)
    app.handler("background", "crash", sandbox=Sandbox())(handlers.crash)
    app.handler("background", "burn", sandbox=Sandbox(cpu_s=1))(handlers.burn_cpu)


async def _outcome(app: Conveyor, job_type: str, data: dict[str, object] | None = None) -> object:
    queue = app.queue("background")
    job_id = await app.add("background", job_type, data or {})
    await wait_until(lambda: _finished(app, job_id), timeout=30)
    return await queue.get_job(job_id)


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("background").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


async def test_sandboxed_handler_runs_in_a_child_process_with_progress_and_logs(app: Conveyor) -> None:
    _register(app)
    async with running(app.worker(["background"])):
        job = await _outcome(app, "add", {"values": [1, 2, 3]})
    assert job.state is JobState.COMPLETED  # type: ignore[attr-defined]
    assert job.result["sum"] == 6  # type: ignore[attr-defined]
    assert job.result["pid"] != os.getpid()  # type: ignore[attr-defined]
    assert job.progress == 50  # type: ignore[attr-defined]
    assert job.logs[0].startswith("adding 3 numbers")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("job_type", "reason"),
    [("spin", "JobTimeoutError"), ("hog", "MemoryError"), ("crash", "signal 11"), ("burn", "SandboxCrashedError")],
)
async def test_a_runaway_handler_fails_only_its_attempt_and_the_worker_carries_on(
    app: Conveyor, job_type: str, reason: str
) -> None:
    _register(app)
    async with running(app.worker(["background"])):
        failed = await _outcome(app, job_type)
        after = await _outcome(app, "add", {"values": [4]})
    assert failed.state is JobState.FAILED  # type: ignore[attr-defined]
    assert reason in failed.failed_reason  # type: ignore[attr-defined]
    assert after.result["sum"] == 4  # type: ignore[attr-defined]


async def test_cancelling_a_sandboxed_job_kills_it_within_a_second(app: Conveyor) -> None:
    _register(app)
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "spin-long", {})
        await wait_until(lambda: state_is(queue, job_id, JobState.ACTIVE))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await queue.cancel(job_id)
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED), timeout=5, interval=0.01)
        assert time.monotonic() - started < 1.0
    assert "JobCancelledError" in ((await queue.get_job(job_id)).failed_reason or "")


def test_a_handler_that_cannot_be_imported_by_name_is_refused(app: Conveyor) -> None:
    def local_handler(payload: object) -> None:
        return None

    with pytest.raises(SandboxSetupError, match="top level"):
        app.handler("background", "local", sandbox=Sandbox())(local_handler)
