"""Bull Board's JSON API on queues Conveyor works on, for each Node bullmq major of the matrix: the queue list with
its counts and job lists, a job's detail, the workers view, and the actions (retry, promote, clean, pause) with
their effect seen by Conveyor. Bull Board (`@bull-board/api`) is driven in-process by `node/board.mjs`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from conveyor import Conveyor, JobState
from tests.queue.conftest import QUEUE, finish, running, wait_until
from tests.queue.node_env import NodeBullmq, run_node_json

BASE = f"/api/queues/{QUEUE}"


async def board(node_bullmq: NodeBullmq, redis_url: str, *requests: list[Any]) -> list[dict[str, Any]]:
    """Bull Board's responses (`{status, body}`) to `[method, path, body?]` requests, in order."""
    responses = await asyncio.to_thread(
        run_node_json, node_bullmq, redis_url, "board.mjs", QUEUE, json.dumps(list(requests))
    )
    assert isinstance(responses, list)
    return responses


async def test_bull_board_lists_conveyors_queue_counts_jobs_and_job_detail(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    completed = await finish(app, "ok", 2)
    [failed] = await finish(app, "boom")
    delayed = await app.add(QUEUE, "ok", {"later": True}, delay_ms=60_000)
    listing, detail, failed_detail = await board(
        node_bullmq,
        redis_url,
        ["get", f"/api/queues?activeQueue={QUEUE}&status=completed&page=1&jobsPerPage=10"],
        ["get", f"{BASE}/{completed[0]}"],
        ["get", f"{BASE}/{failed}"],
    )
    assert listing["status"] == 200, listing
    [queue] = listing["body"]["queues"]
    assert queue["name"] == QUEUE
    assert {k: queue["counts"][k] for k in ("completed", "failed", "delayed")} == {
        "completed": 2,
        "failed": 1,
        "delayed": 1,
    }
    assert sorted(job["id"] for job in queue["jobs"]) == sorted(completed)
    assert delayed not in {job["id"] for job in queue["jobs"]}
    assert detail["status"] == 200, detail
    assert (detail["body"]["status"], detail["body"]["job"]["returnValue"]) == ("completed", {"i": 0})
    assert failed_detail["body"]["job"]["failedReason"] == "RuntimeError: boom"
    assert "RuntimeError: boom" in failed_detail["body"]["job"]["stacktrace"][0]


async def test_bull_board_shows_a_running_conveyor_worker(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    worker = app.worker([QUEUE])
    async with running(worker):
        await wait_until(lambda: _fetching(app))
        [workers] = await board(node_bullmq, redis_url, ["get", f"{BASE}/workers"])
    assert workers["status"] == 200, workers
    # Bull Board shows the name after `:w:`, the address and the age; once for this worker (the session's server
    # may still hold a connection of another test's worker that is closing).
    [seen] = [w for w in workers["body"]["workers"] if w["name"] == f"conveyor@{worker.name}"]
    assert seen["addr"]
    assert "age" in seen


async def _fetching(app: Conveyor) -> bool:
    return any(":w:" in str(row.get("name", "")) for row in await app.client.client_list())


async def test_bull_board_actions_take_effect_on_conveyors_queue(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    [done] = await finish(app, "ok")
    [failed] = await finish(app, "boom")
    delayed = await app.add(QUEUE, "ok", delay_ms=60_000)
    await _finished_a_minute_ago(app, done)  # Bull Board's "clean" keeps jobs finished in the last 5 s
    responses = await board(
        node_bullmq,
        redis_url,
        ["put", f"{BASE}/{failed}/retry"],
        ["put", f"{BASE}/{delayed}/promote"],
        ["put", f"{BASE}/clean/completed"],
        ["put", f"{BASE}/pause"],
    )
    assert [r["status"] for r in responses] == [204, 204, 200, 200], responses
    queue = app.queue(QUEUE)
    assert await queue.is_paused()
    ready = {JobState.PAUSED, JobState.WAITING, JobState.PRIORITIZED}  # to run once the queue is resumed
    assert (await queue.get_job(failed)).state in ready  # retried
    assert (await queue.get_job(delayed)).state in ready  # promoted
    assert (await queue.counts()).completed == 0
    await queue.resume()
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: _state(app, delayed, JobState.COMPLETED))
        await wait_until(lambda: _state(app, failed, JobState.FAILED))  # ran again (and failed again)


async def _finished_a_minute_ago(app: Conveyor, job_id: str) -> None:
    ago_ms = int(time.time() * 1000) - 60_000
    await app.client.zadd(f"bull:{QUEUE}:completed", {job_id: ago_ms})
    await app.client.hset(f"bull:{QUEUE}:{job_id}", "finishedOn", ago_ms)


async def _state(app: Conveyor, job_id: str, state: JobState) -> bool:
    return (await app.queue(QUEUE).get_job(job_id)).state is state
