"""What Bull Board users reach for first: add a job or duplicate one, clean finished jobs older than a grace
period, promote every delayed job, and the Redis panel."""

from __future__ import annotations

import re
import time

from playwright.async_api import Page, expect

from conveyor import Conveyor, NewJob
from conveyor.api import TokenStore
from conveyor.queue.job import JobState
from conveyor.queue.options import JobOptions
from tests.api.conftest import running_worker
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard, wait_until

VERSION = re.compile(r"^\d+\.\d+.* · (standalone|cluster|sentinel) · (master|replica|slave)$")


async def _open_add_dialog(page: Page) -> None:
    await page.get_by_role("group", name="Queue actions").get_by_role("button", name="Add job…").click()
    await expect(page.get_by_role("dialog")).to_be_visible()


async def test_an_operator_adds_a_job_with_data_and_options(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/queues/background")
    await _open_add_dialog(page)
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Job type").fill("ok")
    await dialog.get_by_label("Data (JSON)").fill('{"file": "report.pdf", "pages": 3}')
    await dialog.get_by_label("Delay (ms)").fill("600000")
    await dialog.get_by_label("Priority").fill("2")
    await dialog.get_by_label("Attempts").fill("5")
    await dialog.get_by_role("button", name="Add job").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator(".toast").filter(has_text="Added job")).to_contain_text("(delayed)")
    # No worker runs: the server added the job and says so; the warning stays until dismissed.
    await expect(page.locator(".toast-warning")).to_contain_text("No live worker handles job type 'ok'")

    queue = dashboard.app.queue("background")
    [job] = await queue.jobs(JobState.DELAYED)
    assert (job.type, job.data, job.priority, job.max_attempts) == ("ok", {"file": "report.pdf", "pages": 3}, 2, 5)
    await expect(page.locator('#tab-delayed [data-count="delayed"]')).to_have_text("1")


async def test_mistakes_are_shown_in_the_dialog_which_stays_open(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/queues/background")
    await _open_add_dialog(page)
    dialog = page.get_by_role("dialog")
    error = dialog.get_by_role("alert")
    await dialog.get_by_label("Job type").fill("ok")
    await dialog.get_by_label("Data (JSON)").fill("{oops")
    await dialog.get_by_role("button", name="Add job").click()
    await expect(error).to_contain_text("not valid JSON")

    await dialog.get_by_label("Data (JSON)").fill("{}")
    await dialog.get_by_label("Priority").fill("0")  # the server refuses it: 1 is the highest
    await dialog.get_by_role("button", name="Add job").click()
    await expect(error).to_contain_text("priority")
    await expect(dialog).to_be_visible()
    await browsing.screenshot("add-job-error")
    assert (await dashboard.app.queue("background").counts()).prioritized == 0

    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()


async def test_duplicate_copies_a_jobs_type_data_and_options(dashboard: Dashboard, browsing: Browsing) -> None:
    original = await dashboard.app.add("background", "ok", {"to": "ada@example.com"}, delay_ms=600_000, attempts=4)
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{original}")
    await page.get_by_role("group", name="Job actions").get_by_role("button", name="Duplicate…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.get_by_label("Job type")).to_have_value("ok")
    await expect(dialog.get_by_label("Data (JSON)")).to_have_value('{\n  "to": "ada@example.com"\n}')
    await expect(dialog.get_by_label("Attempts")).to_have_value("4")
    await dialog.get_by_label("Delay (ms)").fill("")  # the copy runs now
    await dialog.get_by_role("button", name="Add the copy").click()
    await expect(page.locator("h1")).not_to_have_text(f"Job {original}")
    copy_id = (await page.locator("h1").text_content() or "").removeprefix("Job ")
    copy = await dashboard.app.queue("background").get_job(copy_id)
    assert (copy.type, copy.data, copy.max_attempts) == ("ok", {"to": "ada@example.com"}, 4)
    assert copy.state is not JobState.DELAYED


async def _finish(app: Conveyor, count: int) -> list[str]:
    ids = await app.add_bulk("background", [NewJob("ok", {"n": n}) for n in range(count)])
    async with running_worker(app, "background"):
        await wait_until(lambda: _completed(app, count))
    return ids


async def _completed(app: Conveyor, count: int) -> bool:
    return (await app.queue("background").counts()).completed == count


async def test_clean_deletes_completed_jobs_older_than_the_grace_period(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    app = dashboard.app
    old, old2, recent = await _finish(app, 3)
    queue = app.queue("background")
    two_hours_ago = int(time.time() * 1000) - 7_200_000
    for job_id in (old, old2):
        await app.client.hset(queue.keys.job(job_id), "finishedOn", two_hours_ago)
        await app.client.zadd(queue.keys.completed, {job_id: two_hours_ago})

    page = await browsing.open(dashboard, route="#/queues/background?tab=completed")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(3)
    await page.get_by_role("button", name="Clean…").click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_label("Jobs").select_option("COMPLETED")
    await dialog.get_by_label("Finished more than").fill("1")
    await dialog.get_by_label("Unit").select_option("hours")
    await dialog.get_by_role("button", name="Delete them").click()
    await expect(page.locator(".toast").filter(has_text="Deleted 2 completed jobs older than 1 hours")).to_be_visible()
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(1)
    assert await queue.state_of(recent) is JobState.COMPLETED
    assert await queue.state_of(old) is JobState.UNKNOWN


async def test_promote_all_delayed_runs_them_now(dashboard: Dashboard, browsing: Browsing) -> None:
    later = JobOptions(delay_ms=600_000)
    await dashboard.app.add_bulk("background", [NewJob("ok", {"n": n}, later) for n in range(4)])
    page = await browsing.open(dashboard, route="#/queues/background?tab=delayed")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(4)
    await page.get_by_role("button", name="Promote all delayed").click()
    await page.get_by_role("dialog").get_by_role("button", name="Promote all").click()
    await expect(page.locator(".toast").filter(has_text="Promoted 4 delayed jobs")).to_be_visible()
    await expect(page.locator('#tab-delayed [data-count="delayed"]')).to_have_text("0")
    await expect(page.get_by_role("button", name="Promote all delayed")).to_be_disabled()
    assert (await dashboard.app.queue("background").counts()).delayed == 0


async def test_the_redis_panel_shows_version_memory_clients_and_eviction(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    page = await browsing.open(dashboard, role="viewer")
    panel = page.locator(".redis-panel")
    await expect(panel.locator('[data-fact="Version"] dd')).to_have_text(VERSION)
    for fact in ("Memory used", "Clients", "Eviction policy", "Uptime"):
        await expect(panel.locator(f'[data-fact="{fact}"] dd')).not_to_be_empty()
    await expect(panel.locator('[data-fact="Clients"] dd')).to_contain_text("connected")
    await browsing.screenshot("redis-panel")


async def test_a_token_limited_to_one_queue_sees_no_redis_panel(
    start_dashboard: StartDashboard, browsing: Browsing
) -> None:
    dashboard = await start_dashboard()
    store = TokenStore(dashboard.app.client, dashboard.app.settings.conveyor_prefix)
    dashboard.tokens["scoped"] = (await store.create("scoped", "viewer", ["background"])).token
    page = await browsing.open(dashboard, role="scoped")
    await expect(page.locator('[data-queue="background"]')).to_be_visible()
    await expect(page.locator(".redis-panel")).to_be_hidden()
