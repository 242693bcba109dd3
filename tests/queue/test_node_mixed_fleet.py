"""A mixed fleet: a Node BullMQ worker and a Conveyor worker serve one queue at once, and every job runs exactly
once (none lost, none run twice), for each Node bullmq major of the matrix."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from conveyor import Conveyor, JobContext, NewJob
from tests.queue.conftest import QUEUE, running, wait_until
from tests.queue.node_env import NodeBullmq, node_process

JOBS = 300
RUNS = "test:runs"


async def test_node_and_conveyor_workers_share_a_queue_each_job_runs_once(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    @app.handler(QUEUE, "record")
    async def record(_: Any, ctx: JobContext) -> None:
        await app.client.rpush(RUNS, f"conveyor:{ctx.job.id}")
        await asyncio.sleep(0.002)

    queue = app.queue(QUEUE)
    with node_process(node_bullmq, redis_url, "mixed_worker.mjs", QUEUE, RUNS):
        async with running(app.worker([QUEUE], {QUEUE: 4})):
            ids = await app.add_bulk(QUEUE, [NewJob("record", {"n": n}) for n in range(JOBS)])
            await wait_until(lambda: _completed(app, JOBS), timeout=60)
    runs = [str(run) for run in await app.client.lrange(RUNS, 0, -1)]
    by_job = Counter(run.split(":", 1)[1] for run in runs)
    assert set(by_job) == set(ids)
    assert max(by_job.values()) == 1  # none ran twice
    by_runtime = Counter(run.split(":", 1)[0] for run in runs)
    assert by_runtime["node"] > 0
    assert by_runtime["conveyor"] > 0
    assert (await queue.counts()).completed == JOBS


async def _completed(app: Conveyor, n: int) -> bool:
    return (await app.queue(QUEUE).counts()).completed >= n
