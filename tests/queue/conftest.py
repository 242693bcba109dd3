"""Fixtures for queue tests: a connected app with a few test handlers, and ways to put jobs in each state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conveyor import Conveyor, JobState, load_settings
from tests.queue.node_env import node_bullmq  # noqa: F401 (the Node BullMQ matrix fixture)
from tests.worker.conftest import running, state_is, wait_until

QUEUE = "background"  # one attempt, no retention: every finished job stays


@dataclass
class Gate:
    """Holds `block` jobs active until opened."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    entered: int = 0

    def open(self) -> None:
        self.event.set()


def register_test_handlers(app: Conveyor, gate: Gate, queue: str = QUEUE) -> None:
    """`ok` returns its payload, `boom` raises, `block` waits for the gate."""

    @app.handler(queue, "ok")
    async def ok(payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @app.handler(queue, "boom")
    async def boom(payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    @app.handler(queue, "block")
    async def block(payload: dict[str, Any]) -> str:
        gate.entered += 1
        await gate.event.wait()
        return "released"


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def app(redis_url: str, gate: Gate) -> AsyncIterator[Conveyor]:
    """A Conveyor on the test's empty Redis with the test handlers on `background`."""
    conveyor = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    register_test_handlers(conveyor, gate)
    await conveyor.connect()
    yield conveyor
    gate.open()
    await conveyor.close()


async def finish(app: Conveyor, job_type: str, count: int = 1, **options: Any) -> list[str]:
    """Add `count` jobs of `job_type` and run them to completion (or failure) with a one-slot worker."""
    queue = app.queue(QUEUE)
    target = JobState.FAILED if job_type == "boom" else JobState.COMPLETED
    async with running(app.worker([QUEUE], {QUEUE: 1})):
        ids = [await app.add(QUEUE, job_type, {"i": i}, **options) for i in range(count)]
        for job_id in ids:
            await wait_until(lambda job_id=job_id: state_is(queue, job_id, target))
    return ids


__all__ = ["QUEUE", "Gate", "finish", "register_test_handlers", "running", "state_is", "wait_until"]
