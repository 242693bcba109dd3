"""The schedules page: adding a schedule whose jobs then arrive, removing it, and what a viewer may do."""

from __future__ import annotations

import re

from playwright.async_api import expect

from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue
from conveyor.queue.schedules import Schedules
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard, WorkerProcesses, wait_until


async def _ticked(queue: Queue, key: str) -> bool:
    done = await queue.job_ids(JobState.COMPLETED, 0, 100)
    return any(job_id.startswith(f"repeat:{key}:") for job_id in done)


async def test_a_schedule_added_from_the_page_adds_jobs_until_removed(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    page = await browsing.open(dashboard, route="#/schedules")
    await expect(page.get_by_text("No schedules yet.")).to_be_visible()
    await page.get_by_label("Key").fill("heartbeat")
    await page.get_by_label("Queue").select_option("background")
    await page.get_by_label("Job type").fill("ok")
    await page.get_by_label("Or interval (ms)").fill("500")
    await page.get_by_label("Job data (JSON)").fill('{"result": "tick"}')
    await page.get_by_role("button", name="Add schedule").click()

    row = page.locator('.schedules-table tr[data-schedule="heartbeat"]')
    await expect(row).to_contain_text("background")
    await expect(row).to_contain_text("every 500 ms")
    [saved] = await Schedules.of(dashboard.app).all()
    assert (saved.spec.queue, saved.spec.type, saved.spec.every_ms, saved.spec.data) == (
        "background",
        "ok",
        500,
        {"result": "tick"},
    )
    worker_processes.start("background")
    await wait_until(lambda: _ticked(dashboard.app.queue("background"), "heartbeat"), timeout=30)
    await browsing.screenshot("schedules")

    await page.get_by_role("link", name="Jobs of schedule heartbeat").click()
    first = page.locator(".jobs-table tbody tr").first
    await expect(first).to_have_attribute("data-job", re.compile(r"^repeat:heartbeat:\d+$"))
    await page.get_by_role("link", name="Schedules", exact=True).click()

    await page.get_by_role("button", name="Remove schedule heartbeat").click()
    await page.get_by_role("dialog").get_by_role("button", name="Remove").click()
    await expect(page.locator(".toast").filter(has_text="Removed schedule heartbeat")).to_be_visible()
    await expect(row).to_have_count(0)
    assert await Schedules.of(dashboard.app).all() == []


async def test_invalid_json_data_is_refused_before_sending(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/schedules")
    await page.get_by_label("Key").fill("broken")
    await page.get_by_label("Job type").fill("ok")
    await page.get_by_label("Cron expression").fill("* * * * *")
    await page.get_by_label("Job data (JSON)").fill("{not json")
    await page.get_by_role("button", name="Add schedule").click()
    await expect(page.get_by_role("alert").filter(has_text="not valid JSON")).to_be_visible()
    assert await Schedules.of(dashboard.app).all() == []


async def test_a_viewer_sees_schedules_but_cannot_add_or_remove(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/schedules")
    await page.get_by_label("Key").fill("nightly")
    await page.get_by_label("Job type").fill("ok")
    await page.get_by_label("Cron expression").fill("0 3 * * *")
    await page.get_by_role("button", name="Add schedule").click()
    await expect(page.locator('.schedules-table tr[data-schedule="nightly"]')).to_be_visible()

    viewer = await browsing.context.new_page()
    token = dashboard.tokens["viewer"]
    await viewer.add_init_script(f"sessionStorage.setItem('conveyor.token', {token!r})")
    await viewer.goto(dashboard.url + "#/schedules")
    await expect(viewer.locator('.schedules-table tr[data-schedule="nightly"]')).to_contain_text("0 3 * * *")
    await expect(viewer.get_by_role("button", name="Remove schedule nightly")).to_have_count(0)
    await expect(viewer.get_by_role("button", name="Add schedule")).to_have_count(0)
    await expect(viewer.get_by_label("Key")).to_have_count(0)


async def test_the_schedules_page_works_under_a_url_prefix(start_dashboard: StartDashboard, browsing: Browsing) -> None:
    dashboard = await start_dashboard(prefix="/ops/conveyor", mode="header")
    page = await browsing.open(dashboard)
    await page.get_by_role("link", name="Schedules", exact=True).click()
    await page.get_by_label("Key").fill("hourly")
    await page.get_by_label("Job type").fill("ok")
    await page.get_by_label("Cron expression").fill("0 * * * *")
    await page.get_by_role("button", name="Add schedule").click()
    await expect(page.locator('.schedules-table tr[data-schedule="hourly"]')).to_contain_text("0 * * * *")
    await page.get_by_role("link", name="Dead letters", exact=True).click()
    await expect(page.get_by_text("No dead letters in")).to_be_visible()
    inside = f"http://127.0.0.1:{dashboard.port}/ops/conveyor/"
    outside = [url for url in browsing.requests if not url.startswith((inside, inside.replace("http", "ws", 1)))]
    assert not outside, f"requests outside the prefix: {outside}"
