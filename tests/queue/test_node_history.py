"""Mixed fleets: the retry history of a job shows attempts a Node BullMQ worker failed (built from the
`stacktrace` BullMQ stores), beside Conveyor's own records."""

from __future__ import annotations

import asyncio
import json

from conveyor import Conveyor, JobState
from conveyor.queue.job import HISTORY_FIELD, NODE_WORKER, AttemptRecord, from_ms, merged_history
from tests.queue.conftest import QUEUE
from tests.queue.node_env import NodeBullmq, run_node_json

NODE_STACK = "Error: node boom {n}\n    at Worker.processor (file:///app/fail.mjs:12:11)"


async def test_a_job_failed_by_node_workers_has_a_history_of_every_attempt(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    job_id = await app.add(QUEUE, "summarize", {"n": 1}, attempts=2)
    printed = await asyncio.to_thread(run_node_json, node_bullmq, redis_url, "fail.mjs", QUEUE)
    assert printed == {"id": job_id, "attemptsMade": 2}
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.FAILED
    assert [(r.attempt, r.error, r.worker) for r in job.history] == [
        (1, "Error: node boom 1", NODE_WORKER),
        (2, "Error: node boom 2", NODE_WORKER),
    ]
    assert job.history[0].failed_at is None  # BullMQ records no time per attempt
    assert job.history[1].failed_at == job.finished_at


def test_conveyor_records_and_node_stacks_merge_in_attempt_order() -> None:
    ours = AttemptRecord(1, "RuntimeError: boom", "Traceback…RuntimeError: boom", from_ms(1_000), "host:1:ab")
    fields = {
        HISTORY_FIELD: json.dumps([ours.to_json()]),
        "stacktrace": json.dumps([ours.stacktrace, NODE_STACK.format(n=2), NODE_STACK.format(n=3)]),
        "atm": "3",
        "finishedOn": "5000",
        "pb": "node-a",
    }
    history = merged_history(fields)
    assert [(r.attempt, r.error, r.worker, r.failed_at) for r in history] == [
        (1, "RuntimeError: boom", "host:1:ab", from_ms(1_000)),
        (2, "Error: node boom 2", NODE_WORKER, None),
        (3, "Error: node boom 3", f"{NODE_WORKER} node-a", from_ms(5_000)),
    ]


def test_node_stacks_trimmed_by_stack_trace_limit_keep_the_latest_attempt_numbers() -> None:
    fields = {"stacktrace": json.dumps([NODE_STACK.format(n=5)]), "atm": "5", "finishedOn": "5000"}
    assert [(r.attempt, r.error) for r in merged_history(fields)] == [(5, "Error: node boom 5")]


def test_a_job_only_conveyor_failed_keeps_its_history_as_recorded() -> None:
    ours = AttemptRecord(1, "RuntimeError: boom", "Traceback…", from_ms(1_000), "host:1:ab")
    fields = {HISTORY_FIELD: json.dumps([ours.to_json()]), "stacktrace": json.dumps([ours.stacktrace]), "atm": "1"}
    assert merged_history(fields) == [ours]
