"""Fixtures for runtime tests: a connected app, in-process workers, and worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobState, Queue, load_settings
from conveyor.worker.worker import Worker

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A Conveyor connected to the test's (empty) Redis, with short shutdown grace."""
    conveyor = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run a worker in this event loop for the duration of the block, then shut it down gracefully."""
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    try:
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)


async def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll an (async) predicate until it is truthy, or fail the test."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def state_is(queue: Queue, job_id: str, state: JobState) -> bool:
    """True when the job is in `state` (for `wait_until`)."""
    return await queue.state_of(job_id) is state


class WorkerProcesses:
    """Worker subprocesses running `tests/worker/sample_app.py`, stopped (or killed) after the test."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *queues: str, concurrency: int = 5, grace_s: float = 2.0, **env: str) -> subprocess.Popen[bytes]:
        environment = {
            **os.environ, "REDIS_URL": self.redis_url, "CONVEYOR_SHUTDOWN_GRACE_S": str(grace_s),
            "PYTHONPATH": str(ROOT), **env,
        }  # fmt: skip
        args = [sys.executable, "-m", "tests.worker.sample_app", ",".join(queues or ("background",)), str(concurrency)]
        proc = subprocess.Popen(args, env=environment, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def worker_processes(redis_url: str) -> Iterator[WorkerProcesses]:
    """Start worker processes of the sample app against the test's Redis."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()
