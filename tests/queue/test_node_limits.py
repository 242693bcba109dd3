"""Limits set from Node BullMQ survive Conveyor workers and hold for them, for each Node bullmq major of the matrix."""

from __future__ import annotations

import asyncio

from conveyor import Conveyor
from tests.queue.conftest import QUEUE, Gate, running, wait_until
from tests.queue.node_env import NodeBullmq, run_node_json


async def test_limits_set_from_node_survive_a_conveyor_worker_starting(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    set_by_node = await asyncio.to_thread(run_node_json, node_bullmq, redis_url, "limits.mjs", QUEUE, "7", "1000", "2")
    assert set_by_node == {"max": "7", "duration": "1000", "concurrency": 2}
    async with running(app.worker([QUEUE])):
        pass
    assert await asyncio.to_thread(run_node_json, node_bullmq, redis_url, "limits.mjs", QUEUE) == set_by_node


async def test_a_global_concurrency_set_from_node_holds_for_a_conveyor_worker(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq, gate: Gate
) -> None:
    await asyncio.to_thread(run_node_json, node_bullmq, redis_url, "limits.mjs", QUEUE, "1000", "1000", "1")
    for _ in range(3):
        await app.add(QUEUE, "block")
    async with running(app.worker([QUEUE], {QUEUE: 3})):
        await wait_until(lambda: _entered(gate, 1))
        await asyncio.sleep(0.5)
        assert gate.entered == 1  # three free slots, one job at a time
        gate.open()
        await wait_until(lambda: _entered(gate, 3))


async def _entered(gate: Gate, n: int) -> bool:
    return gate.entered >= n
