"""The command line in a mixed fleet: `conveyor stats` lists Node BullMQ workers marked as such, and `conveyor
job` shows the retry history of a job Node workers failed."""

from __future__ import annotations

import asyncio
import json

from conveyor import Conveyor
from tests.cli.conftest import Cli
from tests.queue.node_env import install, node_process, run_node_json


async def test_stats_lists_a_node_worker_marked_as_node(conveyor_cli: Cli, redis_url: str) -> None:
    node = install("bullmq-6")
    with node_process(node, redis_url, "idle_worker.mjs", "background", "node-a"):
        table = await conveyor_cli.ainvoke("stats")
        as_json = await conveyor_cli.ainvoke("stats", "--json")
    assert table.exit_code == 0, table.output
    workers = table.stdout.split("Live workers")[1]
    assert "node-a" in workers
    assert "(Node" in workers  # the name column wraps at the runner's 80 columns
    [worker] = json.loads(as_json.stdout)["workers"]
    assert (worker["name"], worker["runtime"], worker["queues"]) == ("node-a", "bullmq", {"background": 0})


async def test_job_shows_the_attempts_node_workers_failed(conveyor_cli: Cli, app: Conveyor, redis_url: str) -> None:
    job_id = await app.add("background", "echo", {}, attempts=2)
    await asyncio.to_thread(run_node_json, install("bullmq-6"), redis_url, "fail.mjs", "background")
    shown = await conveyor_cli.ainvoke("job", "background", job_id)
    assert shown.exit_code == 0, shown.output
    assert "Attempt 1 failed (time not recorded by BullMQ) on Node BullMQ" in shown.stdout
    assert "Error: node boom 2" in shown.stdout
