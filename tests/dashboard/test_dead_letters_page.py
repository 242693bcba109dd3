"""The dead-letter view: jobs that failed for good, their errors, replaying and purging them by role."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor.queue.dlq import DeadLetters
from conveyor.queue.job import JobState
from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses, wait_until


async def dead_letters(dashboard: Dashboard, worker_processes: WorkerProcesses, *reasons: str) -> list[str]:
    """Jobs of `background` that failed for good with these reasons (their worker is stopped again)."""
    ids = [await dashboard.app.add("background", "fail", {"reason": reason}, attempts=1) for reason in reasons]
    worker_processes.start("background")
    letters = DeadLetters.of(dashboard.app, "background")
    await wait_until(lambda: _count_is(letters, len(reasons)), timeout=30)
    worker_processes.stop_all()
    return ids


async def _count_is(letters: DeadLetters, expected: int) -> bool:
    return await letters.count() == expected


async def test_a_job_that_failed_for_good_shows_its_error_and_replays_into_the_queue(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    [job_id] = await dead_letters(dashboard, worker_processes, "disk full on /var")
    page = await browsing.open(dashboard, route="#/queues/background")
    await page.get_by_role("group", name="Queue actions").get_by_role("link", name="Dead letters").click()
    row = page.locator(f'.dlq-table tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("disk full on /var")
    await expect(row).to_contain_text("fail")
    await browsing.screenshot("dead-letters")

    await row.get_by_role("link", name=job_id).click()
    await expect(page.locator("h1")).to_have_text(f"Dead letter {job_id}")
    await expect(page.get_by_label("Stack trace of attempt 1")).to_contain_text("RuntimeError: disk full on /var")
    await expect(page.get_by_label("Job payload")).to_contain_text('"reason": "disk full on /var"')
    await browsing.screenshot("dead-letter")

    await page.get_by_role("button", name="Replay", exact=True).click()
    replayed = page.get_by_role("status").filter(has_text="was replayed as")
    await expect(replayed).to_be_visible()
    new_id = (await replayed.get_by_role("link", name="job ").text_content() or "").removeprefix("job ")
    assert new_id
    assert new_id != job_id
    job = await dashboard.app.queue("background").get_job(new_id)
    assert job.state in (JobState.WAITING, JobState.PRIORITIZED)
    assert job.type == "fail"
    assert await DeadLetters.of(dashboard.app, "background").count() == 0


async def test_replay_all_matching_previews_the_count(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    await dead_letters(dashboard, worker_processes, "timeout a", "timeout b", "parse error")
    page = await browsing.open(dashboard, route="#/dead-letters/background")
    rows = page.locator(".dlq-table tbody tr")
    await expect(rows).to_have_count(3)
    await page.get_by_label("Search dead letters").fill("timeout")
    await page.get_by_role("button", name="Search", exact=True).click()
    await expect(rows).to_have_count(2)

    await page.get_by_role("button", name="Replay all matching…").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("2 dead letters of background will be enqueued")
    await dialog.get_by_role("button", name="Replay 2 jobs").click()
    await expect(page.locator(".toast")).to_contain_text("Replayed 2 dead letters")
    await expect(page.get_by_text("No dead letter matches this search.")).to_be_visible()
    counts = await dashboard.app.queue("background").counts()
    assert counts.waiting == 2
    assert await DeadLetters.of(dashboard.app, "background").count() == 1


async def test_purging_needs_the_queue_name_typed(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    await dead_letters(dashboard, worker_processes, "gone 1", "gone 2")
    page = await browsing.open(dashboard, route="#/dead-letters/background")
    await expect(page.locator(".dlq-table tbody tr")).to_have_count(2)
    await page.get_by_role("button", name="Purge matching…").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Purge 2 dead letters")
    await expect(confirm).to_be_disabled()
    await dialog.get_by_label("Type background to confirm").fill("background")
    await confirm.click()
    await expect(page.locator(".toast")).to_contain_text("Purged 2 dead letters")
    await expect(page.get_by_text("No dead letters in background")).to_be_visible()
    assert await DeadLetters.of(dashboard.app, "background").count() == 0


async def test_a_viewer_sees_no_replay_or_purge_buttons(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    [job_id] = await dead_letters(dashboard, worker_processes, "not for you")
    page = await browsing.open(dashboard, role="viewer", route="#/dead-letters")
    await expect(page).to_have_url(f"{dashboard.url}#/dead-letters/background")
    row = page.locator(f'.dlq-table tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("not for you")
    for name in ("Replay", "Replay all matching…", "Purge matching…", f"Replay job {job_id}"):
        await expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    await browsing.screenshot("dead-letters-viewer")

    await row.get_by_role("link", name=job_id).click()
    await expect(page.get_by_label("Stack trace of attempt 1")).to_contain_text("not for you")
    await expect(page.locator(".page-head .actions button")).to_have_count(0)
    await page.get_by_role("button", name="Use the light theme").click()
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await browsing.screenshot("dead-letter-light")
    assert await DeadLetters.of(dashboard.app, "background").count() == 1
