"""The job page: live progress and logs, errors with stack traces per attempt, role-allowed actions."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue
from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses, wait_until


async def test_progress_and_logs_update_live(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    job_id = await dashboard.app.add("background", "steps", {"steps": 4, "pause": 0.6})
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{job_id}")
    await expect(page.locator("h1")).to_have_text(f"Job {job_id}")
    await expect(page.get_by_label("Job logs")).to_have_text("No log lines.")
    worker_processes.start("background")
    await expect(page.get_by_label("Job logs")).to_contain_text("step 2", timeout=20_000)
    await expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "50")
    await browsing.screenshot("job-running")
    await expect(page.locator(".page-head .badge")).to_have_text("completed", timeout=20_000)
    await expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    await expect(page.get_by_label("Job logs")).to_contain_text("step 4")
    await expect(page.locator("#s-result + pre")).to_contain_text('"steps": 4')


async def test_failed_job_shows_each_attempt_with_its_stack_trace(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    job_id = await dashboard.app.add(
        "background", "fail", {"reason": "disk full"}, attempts=2, backoff={"type": "fixed", "delay": 100}
    )
    worker_processes.start("background")
    queue = dashboard.app.queue("background")
    await wait_until(lambda: _is_failed(queue, job_id), timeout=30)
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{job_id}")
    await expect(page.locator(".error-text")).to_contain_text("disk full")
    attempts = page.locator("details.attempt")
    await expect(attempts).to_have_count(2)
    await expect(page.get_by_label("Stack trace of attempt 2")).to_contain_text("RuntimeError: disk full")
    await expect(page.locator(".timeline")).to_contain_text("Attempt 1 failed")
    await expect(page.get_by_label("Job data")).to_contain_text('"reason": "disk full"')
    await expect(page.get_by_label("Job options")).to_contain_text('"attempts": 2')
    await browsing.screenshot("job-failed")

    worker_processes.stop_all()
    await page.get_by_role("button", name="Retry", exact=True).click()
    await expect(page.locator(".page-head .badge")).not_to_have_text("failed")
    assert (await queue.get_job(job_id)).state in (JobState.WAITING, JobState.PRIORITIZED)


async def _is_failed(queue: Queue, job_id: str) -> bool:
    return (await queue.get_job(job_id)).state is JobState.FAILED
