"""Node interop: jobs cross between Node BullMQ and Conveyor in both directions, for each Node bullmq major of the
matrix (see `tests.queue.node_env`)."""

from __future__ import annotations

import json

from conveyor import Conveyor, JobState
from tests.queue.conftest import QUEUE, running, state_is, wait_until
from tests.queue.node_env import NodeBullmq, run_node


async def test_a_job_added_by_node_bullmq_is_processed_by_our_worker(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    job_id = run_node(node_bullmq, redis_url, "add.mjs", QUEUE, "ok", json.dumps({"filePath": "src/a.ts"}))
    queue = app.queue(QUEUE)
    assert (await queue.get_job(job_id)).data == {"filePath": "src/a.ts"}
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert (job.type, job.result) == ("ok", {"filePath": "src/a.ts"})


async def test_a_node_bullmq_worker_processes_a_job_we_add(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    job_id = await app.add(QUEUE, "summarize", {"text": "héllo"}, priority="high")
    printed = json.loads(run_node(node_bullmq, redis_url, "work.mjs", QUEUE))
    assert printed == {"id": job_id, "name": "summarize", "data": {"text": "héllo"}}
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.COMPLETED
    assert job.result == {"node": True, "name": "summarize", "data": {"text": "héllo"}}
