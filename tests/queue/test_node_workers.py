"""Workers are visible both ways: Node BullMQ's `getWorkers()` lists Conveyor's workers, and Conveyor's worker
list shows Node workers (marked as such), for each Node bullmq major of the matrix."""

from __future__ import annotations

import asyncio
from typing import Any

from conveyor import Conveyor
from tests.queue.conftest import QUEUE, running, wait_until
from tests.queue.node_env import NodeBullmq, node_process, run_node_json


async def node_sees(node_bullmq: NodeBullmq, redis_url: str, queue: str) -> list[dict[str, Any]]:
    listed = await asyncio.to_thread(run_node_json, node_bullmq, redis_url, "getworkers.mjs", queue)
    assert isinstance(listed, list)
    return listed


async def test_node_get_workers_lists_a_running_conveyor_worker_once_per_queue(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    worker = app.worker([QUEUE])
    async with running(worker):
        await wait_until(lambda: _named_connections(app, worker.name))
        listed = await node_sees(node_bullmq, redis_url, QUEUE)
    # Once for this worker (the session's server may still hold a closing connection of another test's worker).
    listed = [row for row in listed if row["rawname"].endswith(f":w:conveyor@{worker.name}")]
    assert len(listed) == 1
    assert listed[0]["name"] == QUEUE
    assert listed[0]["rawname"].endswith(f":w:conveyor@{worker.name}")
    assert {"addr", "age", "idle"} <= set(listed[0])
    after = await node_sees(node_bullmq, redis_url, QUEUE)
    assert [row for row in after if row["rawname"].endswith(f":w:conveyor@{worker.name}")] == []  # gone once stopped


async def _named_connections(app: Conveyor, worker_name: str) -> bool:
    return any(row.get("name", "").endswith(f":w:conveyor@{worker_name}") for row in await app.client.client_list())


async def test_conveyor_lists_a_running_node_worker_marked_as_bullmq(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    async with running(app.worker([QUEUE])):
        with node_process(node_bullmq, redis_url, "idle_worker.mjs", QUEUE, "node-a"):
            workers = await app.workers()
        after = await app.workers()
    by_runtime = {w.runtime: w for w in workers}
    assert len(workers) == 2, workers  # ours from its registry record (not again from its connection), and Node's
    node = by_runtime["bullmq"]
    assert (node.name, node.queues, node.pid) == ("node-a", {QUEUE: 0}, 0)
    assert node.host
    assert node.started_at <= node.last_beat
    assert by_runtime["conveyor"].queues == {QUEUE: by_runtime["conveyor"].queues[QUEUE]}
    assert [w.runtime for w in after] == ["conveyor"]
