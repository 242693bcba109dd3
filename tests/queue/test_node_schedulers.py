"""Node interop of schedules: they are BullMQ job schedulers, so a schedule made in either runtime is listed by
both and run once per tick by whichever workers serve the queue (Conveyor's, Node's, or both).

The Node side is `tests/queue/node/schedulers.mjs`, run by each Node bullmq major of the matrix (the `node_bullmq`
fixture of `tests.queue.node_env`; skipped, with the reason, without node and npm).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import sys

from conveyor import Conveyor, JobState
from conveyor.queue.schedules import Schedules
from tests.queue.conftest import QUEUE, running, wait_until
from tests.queue.node_env import NodeBullmq, run_node
from tests.support import assert_latency


def tick_of(job_id: str) -> int:
    return int(job_id.rsplit(":", 1)[1])


async def completed_runs(app: Conveyor, key: str) -> list[str]:
    """The ids of the completed runs of schedule `key`, by tick."""
    done = await app.queue(QUEUE).job_ids(JobState.COMPLETED, 0, 1000)
    return sorted((job_id for job_id in done if job_id.startswith(f"repeat:{key}:")), key=tick_of)


def assert_each_tick_once(ids: list[str], period_ms: int) -> None:
    ticks = [tick_of(job_id) for job_id in ids]
    assert len(set(ticks)) == len(ticks), ids  # no tick ran twice
    assert [b - a for a, b in itertools.pairwise(ticks)] == [period_ms] * (len(ticks) - 1), ids  # none skipped


async def test_a_schedule_made_in_node_is_listed_and_run_by_our_worker_once_per_tick(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    first = run_node(node_bullmq, redis_url, "schedulers.mjs", "upsert", QUEUE, "beat", "400", "ok", '{"n": 1}')
    [listed] = await Schedules.of(app).all()
    assert (listed.key, listed.spec.queue, listed.spec.type, listed.spec.every_ms, listed.spec.data) == (
        "beat", QUEUE, "ok", 400, {"n": 1},
    )  # fmt: skip
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: _at_least(app, "beat", 6), timeout=10)
    ids = await completed_runs(app, "beat")
    assert ids[0] == first
    # The first run was due at once, before our worker started: when it is taken more than an interval late, the
    # next run is the next slot after it was taken (BullMQ's script skips missed slots). From then on, each once.
    assert_each_tick_once(ids[1:], 400)
    jobs = [await app.queue(QUEUE).get_job(job_id) for job_id in ids[1:]]  # the first one ran at once
    started = [job.processed_at.timestamp() * 1000 - tick_of(job.id) for job in jobs if job.processed_at]
    assert_latency(started, promised_ms=100, what="tick to started")
    after = await Schedules.of(app).get("beat")
    assert after.next_run is not None
    assert after.iterations >= len(ids)


async def test_a_cron_schedule_with_seconds_and_a_zone_made_in_node_runs_on_whole_seconds_here(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    every_second = ("upsert-cron", QUEUE, "sec", "* * * * * *", "Asia/Kathmandu", "ok")
    run_node(node_bullmq, redis_url, "schedulers.mjs", *every_second)
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: _at_least(app, "sec", 4), timeout=10)
    ids = await completed_runs(app, "sec")
    assert all(tick_of(job_id) % 1000 == 0 for job_id in ids), ids
    # Node added the first run before our worker started; when that run is taken more than a second late, the
    # next run is the next tick after it was taken (missed ticks are not added, as in BullMQ). From then on,
    # every tick runs once.
    assert_each_tick_once(ids[1:], 1000)


async def test_a_schedule_added_with_the_cli_is_listed_by_node_and_run_by_a_node_worker(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    added = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor", "schedule", "add", "tidy", "--queue", QUEUE, "--type", "ok",
        "--every-ms", "300", "--data", '{"from": "cli"}',
        env={**os.environ, "REDIS_URL": redis_url}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(added.communicate(), 60)
    assert added.returncode == 0, stderr.decode()
    [listed] = json.loads(run_node(node_bullmq, redis_url, "schedulers.mjs", "list", QUEUE))
    assert (listed["key"], listed["name"], listed["every"]) == ("tidy", "ok", 300)
    assert listed["template"]["data"] == {"from": "cli"}
    assert listed["next"] % 300 == 0  # Conveyor's intervals tick on multiples of the interval
    ran = json.loads(run_node(node_bullmq, redis_url, "schedulers.mjs", "work", QUEUE, "2.5"))
    assert len(ran) >= 5, ran
    # The first run was due while no worker ran (the schedule was made before Node started): it ran late, once,
    # and Node's worker went on from the next tick after that; from then on every tick ran once.
    assert_each_tick_once(sorted(ran, key=tick_of)[1:], 300)
    job = await app.queue(QUEUE).get_job(ran[0])
    assert job.result == {"node": True, "id": ran[0]}


async def test_a_cron_schedule_we_make_is_run_by_a_node_worker_on_whole_seconds(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    await Schedules.of(app).add(key="cron", queue=QUEUE, type="ok", cron="* * * * * *", tz="Asia/Kathmandu")
    ran = json.loads(run_node(node_bullmq, redis_url, "schedulers.mjs", "work", QUEUE, "3.5"))
    ticks = sorted(ran, key=tick_of)
    assert len(ticks) >= 3, ran
    assert all(tick_of(job_id) % 1000 == 0 for job_id in ticks), ticks
    assert_each_tick_once(ticks[1:], 1000)  # Node's cron-parser reads the pattern and zone from each run's job


async def test_workers_of_both_runtimes_on_one_queue_run_each_tick_once(
    app: Conveyor, redis_url: str, node_bullmq: NodeBullmq
) -> None:
    await Schedules.of(app).add(key="both", queue=QUEUE, type="ok", every_ms=400, data={"by": "conveyor"})
    node = await asyncio.create_subprocess_exec(
        shutil.which("node") or "node", "schedulers.mjs", "work", QUEUE, "5", cwd=node_bullmq.workdir,
        env={**os.environ, "REDIS_URL": redis_url}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with running(app.worker([QUEUE])):
        out, _ = await node.communicate()
    assert node.returncode == 0
    ids = await completed_runs(app, "both")
    assert len(ids) >= 10, ids
    assert_each_tick_once(ids[1:], 400)  # the first run may be taken late, as the workers start (see above)
    by_node = set(json.loads(out))
    results = [(await app.queue(QUEUE).get_job(job_id)).result for job_id in ids]
    assert {job_id for job_id, result in zip(ids, results, strict=True) if result.get("node")} == by_node & set(ids)
    print(f"ticks run: {len(ids)}, by Node: {len(by_node & set(ids))}, by Conveyor: {len(set(ids) - by_node)}")


async def _at_least(app: Conveyor, key: str, count: int) -> bool:
    return len(await completed_runs(app, key)) >= count
