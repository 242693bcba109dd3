"""The workers page lists live workers; a stopped worker disappears."""

from __future__ import annotations

from playwright.async_api import expect

from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses


async def test_live_workers_appear_and_stopped_ones_disappear(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    page = await browsing.open(dashboard, route="#/workers")
    await expect(page.locator(".summary")).to_have_text("0 live workers")
    proc = worker_processes.start("background", "indexing")
    row = page.locator(".workers-table tbody tr")
    await expect(row).to_have_count(1, timeout=20_000)
    await expect(row).to_contain_text(str(proc.pid))
    await expect(row).to_contain_text("background")
    await expect(row).to_contain_text("indexing")
    await browsing.screenshot("workers")
    worker_processes.stop_all()
    await expect(row).to_have_count(0, timeout=20_000)
    await expect(page.locator(".summary")).to_have_text("0 live workers")
