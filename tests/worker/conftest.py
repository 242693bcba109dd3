"""Fixtures for runtime tests: a connected app, in-process workers, and worker subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState, Queue, load_settings
from tests.support import running, stop_processes, wait_until  # noqa: F401 (re-exported for the tests here)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A Conveyor connected to the test's (empty) Redis, with short shutdown grace."""
    conveyor = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


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
        stop_processes(self.procs, 15)


@pytest.fixture
def worker_processes(redis_url: str) -> Iterator[WorkerProcesses]:
    """Start worker processes of the sample app against the test's Redis."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()
