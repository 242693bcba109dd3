"""The queue page: search, retry, pause, retry-all preview, typed confirmation for clearing."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor import NewJob
from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue
from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses, wait_until

FILES = ["src/index.ts", "src/app/main.ts", "docs/src-notes.md", "lib/util.ts", "test/src/fixture.ts"]


async def failed_jobs(dashboard: Dashboard, worker_processes: WorkerProcesses, count: int) -> list[str]:
    """`count` jobs of `background` that failed (their worker is stopped again)."""
    ids = await dashboard.app.add_bulk("background", [NewJob("fail", {"reason": f"boom {n}"}) for n in range(count)])
    worker_processes.start("background")
    queue = dashboard.app.queue("background")
    await wait_until(lambda: _failed(queue, count), timeout=30)
    worker_processes.stop_all()
    return ids


async def _failed(queue: Queue, count: int) -> bool:
    return (await queue.counts()).failed == count


async def test_search_finds_a_job_by_a_data_field(dashboard: Dashboard, browsing: Browsing) -> None:
    ids = await dashboard.app.add_bulk("indexing", [NewJob("index-file", {"filePath": path}) for path in FILES])
    page = await browsing.open(dashboard, route="#/queues/indexing")
    rows = page.locator(".jobs-table tbody tr")
    await expect(rows).to_have_count(len(FILES))

    await page.get_by_role("searchbox", name="Search jobs").fill("data.filePath:src/*")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(rows).to_have_count(2)
    shown = sorted(await rows.evaluate_all("rows => rows.map(r => r.dataset.job)"))
    assert shown == sorted([ids[0], ids[1]])
    await expect(page.locator(".list-status")).to_contain_text("2 jobs")
    assert "data.filePath%3Asrc%2F*" in page.url or "data.filePath:src/*" in page.url  # shareable link
    await browsing.screenshot("queue-search")


async def test_retry_of_a_failed_job_moves_it_to_waiting(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    [job_id] = await failed_jobs(dashboard, worker_processes, 1)
    page = await browsing.open(dashboard, route="#/queues/background?tab=failed")
    row = page.locator(f'.jobs-table tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("boom 0")
    await browsing.screenshot("queue-failed")

    await page.get_by_label(f"Select job {job_id}").check()
    await page.get_by_role("button", name="Retry selected").click()
    await expect(page.locator(".toast")).to_contain_text("1 retried")
    await expect(row).to_have_count(0)
    job = await dashboard.app.queue("background").get_job(job_id)
    assert job.state in (JobState.WAITING, JobState.PRIORITIZED)
    await expect(page.locator('#tab-failed [data-count="failed"]')).to_have_text("0")


async def test_pause_stops_processing(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    worker_processes.start("background")
    page = await browsing.open(dashboard, route="#/queues/background")
    await page.get_by_role("button", name="Pause queue background").click()
    await expect(page.locator("h1 .badge.paused")).to_be_visible()
    assert await dashboard.app.queue("background").is_paused()

    await dashboard.app.add_bulk("background", [NewJob("ok", {}) for _ in range(5)])
    await expect(page.locator('[data-count="waiting"]')).to_have_text("5")  # paused, default priority: waiting
    await page.wait_for_timeout(1500)  # a running worker would have finished them by now
    counts = await dashboard.app.queue("background").counts()
    assert (counts.completed, counts.active) == (0, 0)

    await page.get_by_role("button", name="Resume queue background").click()
    await expect(page.locator('[data-count="completed"]')).to_have_text("5", timeout=20_000)
    await expect(page.locator("h1 .badge.paused")).to_have_count(0)


async def test_retry_all_failed_previews_the_count(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    await failed_jobs(dashboard, worker_processes, 3)
    page = await browsing.open(dashboard, route="#/queues/background?tab=failed")
    await page.get_by_role("button", name="Retry all failed").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("3 failed jobs of background will move back to waiting")
    await dialog.get_by_role("button", name="Retry 3 jobs").click()
    await expect(page.locator(".toast")).to_contain_text("Retried 3 jobs")
    assert (await dashboard.app.queue("background").counts()).failed == 0


async def test_clearing_needs_the_queue_name_typed(dashboard: Dashboard, browsing: Browsing) -> None:
    await dashboard.app.add_bulk("background", [NewJob("ok", {}) for _ in range(4)])
    page = await browsing.open(dashboard, role="admin", route="#/queues/background")
    await page.get_by_role("button", name="Clear queue…").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Delete every job")
    await expect(confirm).to_be_disabled()
    await dialog.get_by_label("Type background to confirm").fill("backgroun")
    await expect(confirm).to_be_disabled()
    await dialog.get_by_label("Type background to confirm").fill("background")
    await confirm.click()
    await expect(page.locator(".toast")).to_contain_text("Cleared background")
    counts = await dashboard.app.queue("background").counts()
    assert counts.waiting == 0


async def test_search_by_failed_reason_and_time_range(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    await failed_jobs(dashboard, worker_processes, 3)
    page = await browsing.open(dashboard, route="#/queues/background?tab=failed")
    rows = page.locator(".jobs-table tbody tr")
    await expect(rows).to_have_count(3)
    await page.get_by_role("searchbox", name="Search jobs").fill('reason:"boom 1"')
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("boom 1")

    await page.get_by_role("button", name="Reset").click()
    await expect(rows).to_have_count(3)
    await page.get_by_label("Finished from").fill("2099-01-01T00:00:00")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(page.locator(".jobs-table")).to_have_count(0)
    await expect(page.get_by_text("No job matches this search.")).to_be_visible()


async def test_state_tabs_work_with_the_keyboard(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/queues/background?tab=waiting")
    waiting = page.get_by_role("tab", name="Waiting", exact=False).first
    await expect(waiting).to_have_attribute("aria-selected", "true")
    await waiting.focus()
    await page.keyboard.press("ArrowRight")
    delayed = page.get_by_role("tab", name="Delayed")
    await expect(delayed).to_have_attribute("aria-selected", "true")
    await expect(delayed).to_be_focused()
    await page.keyboard.press("End")
    await expect(page.get_by_role("tab", name="Waiting for children")).to_be_focused()
    assert "tab=waiting-children" in page.url


async def test_the_queue_page_shows_the_limits_in_force_whoever_set_them(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    page = await browsing.open(dashboard, route="#/queues/indexing")
    await expect(page.get_by_test_id("queue-limits")).to_have_text("No queue-wide limits.")
    # As Node's setGlobalRateLimit and setGlobalConcurrency write them: in the queue's meta hash.
    meta = dashboard.app.queue("background").keys.meta
    await dashboard.app.client.hset(meta, mapping={"max": 5, "duration": 1000, "concurrency": 3})
    await page.goto(page.url.replace("#/queues/indexing", "#/queues/background"))
    await expect(page.get_by_test_id("queue-limits")).to_have_text(
        "Queue-wide limits: at most 5 jobs started per 1.0 s; at most 3 running at once across all workers."
    )
