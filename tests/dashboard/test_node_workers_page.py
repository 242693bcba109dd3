"""The workers page lists Node BullMQ workers of the queues too, marked as such (found by their connection names,
as BullMQ's `getWorkers` finds them)."""

from __future__ import annotations

from playwright.async_api import expect

from tests.dashboard.conftest import Browsing, Dashboard
from tests.queue.node_env import install, node_process


async def test_a_node_bullmq_worker_is_listed_marked_as_node(
    dashboard: Dashboard, browsing: Browsing, redis_url: str
) -> None:
    node = install("bullmq-6")
    page = await browsing.open(dashboard, route="#/workers")
    with node_process(node, redis_url, "idle_worker.mjs", "background", "node-thumbnails"):
        row = page.locator(".workers-table tbody tr")
        await expect(row).to_have_count(1, timeout=20_000)
        await expect(row).to_contain_text("node-thumbnails")
        await expect(row).to_contain_text("Node BullMQ")
        await expect(row).to_contain_text("background")
    await expect(row).to_have_count(0, timeout=20_000)
