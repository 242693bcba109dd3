"""The overview: live counts per queue, pushed over GraphQL subscriptions, workers and their absence."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor import NewJob
from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses


def graphql_posts(tab: Browsing) -> int:
    return sum(1 for url in tab.requests if url.endswith("/graphql"))


async def test_counts_update_live_while_a_worker_processes_jobs(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    page = await browsing.open(dashboard)
    card = page.locator('[data-queue="background"]')
    await expect(page.locator("#connection")).to_have_text("Live")
    await expect(card.locator('[data-field="waiting"]')).to_have_text("0")
    posts_before = graphql_posts(browsing)

    await dashboard.app.add_bulk("background", [NewJob("sleep", {"seconds": 0.1}) for _ in range(12)])
    await expect(card.locator("[data-warning]")).to_have_text("12 jobs are waiting but no worker serves this queue.")
    await expect(card.locator('[data-field="waiting"]')).to_have_text("12")  # default priority: still waiting

    worker_processes.start("background")
    await expect(card.locator('[data-field="completed"]')).to_have_text("12", timeout=30_000)
    for state in ("waiting", "active"):
        await expect(card.locator(f'[data-field="{state}"]')).to_have_text("0")
    await expect(card.locator("[data-workers]")).to_contain_text("1 worker")
    await expect(card.locator("[data-warning]")).to_be_hidden()
    await expect(card.locator('[data-rate="jobs"]')).not_to_have_text("0")
    assert graphql_posts(browsing) == posts_before, "counts must arrive over the websocket, not by polling"
    await browsing.screenshot("overview")
