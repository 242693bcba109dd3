"""Priorities, delays, and pause/resume decide when jobs run."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conveyor import Conveyor, JobContext, JobState
from tests.support import assert_latency, blocked_clients
from tests.worker.conftest import running, state_is, wait_until


async def test_jobs_run_in_priority_order_critical_first(app: Conveyor) -> None:
    order: list[str] = []

    @app.handler("background", "note")
    async def note(payload: dict[str, Any]) -> None:
        order.append(payload["name"])

    queue = app.queue("background")
    await queue.pause()
    for name, priority in [("low", "low"), ("normal", "normal"), ("n7", 7), ("high", "high"), ("crit", "critical")]:
        await app.add("background", "note", {"name": name}, priority=priority)
    async with running(app.worker(["background"], {"background": 1})):
        await queue.resume()
        await wait_until(lambda: len(order) == 5)
    assert order == ["crit", "high", "normal", "low", "n7"]


async def test_same_priority_runs_first_in_first_out(app: Conveyor) -> None:
    order: list[int] = []

    @app.handler("background", "note")
    async def note(payload: dict[str, Any]) -> None:
        order.append(payload["i"])

    queue = app.queue("background")
    await queue.pause()
    for i in range(10):
        await app.add("background", "note", {"i": i})
    async with running(app.worker(["background"], {"background": 1})):
        await queue.resume()
        await wait_until(lambda: len(order) == 10)
    assert order == list(range(10))


async def test_delayed_jobs_run_within_50ms_of_their_due_time(app: Conveyor) -> None:
    lateness: list[float] = []

    @app.handler("background", "due")
    async def due(payload: dict[str, Any]) -> None:
        lateness.append(time.time() - payload["due"])

    async with running(app.worker(["background"])):
        await wait_until(lambda: blocked_clients(app.client))  # idle and blocked when the delayed jobs arrive
        for delay_ms in (150, 400, 700, 1100, 1600):
            await app.add("background", "due", {"due": time.time() + delay_ms / 1000}, delay_ms=delay_ms)
        await wait_until(lambda: len(lateness) == 5, timeout=5)
    assert_latency([late * 1000 for late in lateness], promised_ms=50, what="delayed job start after its due time")


async def test_delayed_job_is_not_run_early_and_can_be_promoted(app: Conveyor) -> None:
    ran: list[float] = []

    @app.handler("background", "later")
    async def later(payload: dict[str, Any]) -> None:
        ran.append(time.time())

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", "later", {}, delay_ms=60_000)
        await asyncio.sleep(0.3)
        assert ran == []
        assert await queue.state_of(job_id) is JobState.DELAYED
        await queue.promote(job_id)
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))


async def test_paused_queue_starts_nothing_until_resumed(app: Conveyor) -> None:
    ran: list[str] = []

    @app.handler("background", "note")
    async def note(payload: dict[str, Any], ctx: JobContext) -> None:
        ran.append(ctx.job.id)

    queue = app.queue("background")
    async with running(app.worker(["background"])):
        await queue.pause()
        ids = [await app.add("background", "note", {}) for _ in range(3)]
        await asyncio.sleep(0.5)
        counts = await queue.counts()
        assert ran == []
        assert counts.paused
        assert counts.waiting == 3
        assert (await queue.get_job(ids[0])).state is JobState.WAITING
        await queue.resume()
        await wait_until(lambda: len(ran) == 3)
    assert not (await queue.counts()).paused
