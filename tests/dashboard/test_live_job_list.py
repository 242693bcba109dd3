"""The queue page's job list follows the queue: jobs added, moved or finished elsewhere show up without a click,
so the tab's badge and the list agree."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor import NewJob
from conveyor.queue.options import JobOptions
from tests.dashboard.conftest import Browsing, Dashboard

LATER = JobOptions(delay_ms=600_000)


async def test_the_list_follows_jobs_added_and_moved_elsewhere(dashboard: Dashboard, browsing: Browsing) -> None:
    queue = dashboard.app.queue("background")
    first = await dashboard.app.add_bulk("background", [NewJob("ok", {"n": n}, LATER) for n in range(2)])
    page = await browsing.open(dashboard, route="#/queues/background?tab=delayed")
    rows = page.locator(".jobs-table tbody tr")
    badge = page.locator('#tab-delayed [data-count="delayed"]')
    await expect(rows).to_have_count(2)

    await dashboard.app.add_bulk("background", [NewJob("ok", {"n": n}, LATER) for n in range(2, 5)])
    await expect(badge).to_have_text("5")
    await expect(rows).to_have_count(5)
    await expect(page.locator(".list-status")).to_contain_text("5 jobs")

    await queue.promote(first[0])
    await expect(badge).to_have_text("4")
    await expect(rows).to_have_count(4)
    await expect(page.locator(f'.jobs-table tr[data-job="{first[0]}"]')).to_have_count(0)
