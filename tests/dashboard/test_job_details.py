"""What a job's page and row say about it: its priority in words, the attempt being run, and earlier
attempts' errors as history once the job got past them."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import expect

from conveyor.queue.job import JobState
from conveyor.worker.context import JobContext
from tests.api.conftest import running_worker
from tests.dashboard.conftest import Browsing, Dashboard, wait_until


async def test_priority_reads_as_a_level_where_lower_runs_first(dashboard: Dashboard, browsing: Browsing) -> None:
    normal = await dashboard.app.add("background", "ok", {}, delay_ms=600_000)
    seventh = await dashboard.app.add("background", "ok", {}, priority=7, delay_ms=600_000)
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{normal}")
    facts = page.locator(".facts")
    await expect(facts).to_contain_text("normal (3)")
    await page.goto(dashboard.url + f"#/queues/background/jobs/{seventh}")
    await expect(facts).to_contain_text("7 (lower runs first)")


async def test_an_active_job_shows_the_attempt_it_is_running(dashboard: Dashboard, browsing: Browsing) -> None:
    release = asyncio.Event()

    @dashboard.app.handler("background", "hold")
    async def hold(payload: dict[str, Any]) -> None:
        await release.wait()

    job_id = await dashboard.app.add("background", "hold", {}, attempts=3)
    async with running_worker(dashboard.app, "background"):
        queue = dashboard.app.queue("background")
        await wait_until(lambda: _in_state(queue, job_id, JobState.ACTIVE), timeout=20)
        page = await browsing.open(dashboard, route="#/queues/background?tab=active")
        row = page.locator(f'.jobs-table tr[data-job="{job_id}"]')
        await expect(row).to_contain_text("1 of 3")
        await page.goto(dashboard.url + f"#/queues/background/jobs/{job_id}")
        await expect(page.locator(".facts")).to_contain_text("attempt 1 of 3, running")
        release.set()
        await expect(page.locator(".page-head .badge")).to_have_text("completed")
        await expect(page.locator(".facts")).to_contain_text("1 of 3 made")


async def test_a_completed_job_shows_an_earlier_error_as_history(dashboard: Dashboard, browsing: Browsing) -> None:
    @dashboard.app.handler("background", "flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> str:
        if ctx.job.attempt == 1:
            raise RuntimeError("first try went wrong")
        return "fine"

    job_id = await dashboard.app.add("background", "flaky", {}, attempts=2, backoff={"type": "fixed", "delay": 50})
    queue = dashboard.app.queue("background")
    async with running_worker(dashboard.app, "background"):
        await wait_until(lambda: _in_state(queue, job_id, JobState.COMPLETED), timeout=20)
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{job_id}")
    await expect(page.locator(".page-head .badge")).to_have_text("completed")
    await expect(page.locator(".error-text")).to_have_count(0)
    history = page.locator("section", has=page.get_by_role("heading", name="Earlier attempts"))
    await expect(history).to_contain_text("first try went wrong")
    await expect(history.locator(".reason.past")).to_have_count(1)
    await expect(page.locator("#s-result + pre")).to_contain_text("fine")

    await page.goto(dashboard.url + "#/queues/background?tab=completed")
    row = page.locator(f'.jobs-table tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("2 of 2")
    await expect(row).not_to_contain_text("first try went wrong")


async def _in_state(queue: Any, job_id: str, state: JobState) -> bool:
    return bool(await queue.state_of(job_id) is state)
