"""Fixtures for fault tests: a connected app, a raw client that writes bytes the way another tool might, and
worker subprocesses that keep a ledger outside Redis."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.faults.ledger import Ledger
from tests.worker.conftest import (
    WorkerProcesses,
    app,  # noqa: F401 (the same connected app as the runtime tests)
)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client without decoding: it writes and reads job hashes as bytes."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.txt")


@pytest.fixture
def workers(redis_url: str, ledger: Ledger) -> Iterator[WorkerProcesses]:
    procs = WorkerProcesses(redis_url)
    yield procs
    for proc in procs.procs:  # a stopped process cannot act on SIGTERM
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
    procs.stop_all()
