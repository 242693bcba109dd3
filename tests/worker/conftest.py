"""Fixtures for runtime tests: a connected app, in-process workers, and worker subprocesses."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState, Queue, load_settings
from tests.support import ProcessGroup, running, wait_until  # noqa: F401 (re-exported for the tests here)

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


class WorkerProcesses(ProcessGroup):
    """Worker subprocesses running `tests/worker/sample_app.py`, stopped (or killed) after the test."""

    def start(self, *queues: str, concurrency: int = 5, grace_s: float = 2.0, **env: str) -> subprocess.Popen[bytes]:
        queue_list = ",".join(queues or ("background",))
        return self.spawn(
            "tests.worker.sample_app", queue_list, str(concurrency), CONVEYOR_SHUTDOWN_GRACE_S=str(grace_s), **env
        )


@pytest.fixture
def worker_processes(redis_url: str) -> Iterator[WorkerProcesses]:
    """Start worker processes of the sample app against the test's Redis."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()
