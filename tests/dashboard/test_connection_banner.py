"""The connection banner speaks only of real drops: a fresh load is quiet, a drop is announced, and the
"Reconnected" message goes away by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import expect

from conveyor import Conveyor, load_settings
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard

# Records every state the banner shows, from the first script on (before the dashboard's own code runs).
RECORD_BANNER = """
window.bannerSeen = [];
document.addEventListener('DOMContentLoaded', () => {
  const banner = document.getElementById('banner');
  new MutationObserver(() => {
    if (!banner.hidden) window.bannerSeen.push(banner.textContent);
  }).observe(banner, { attributes: true, childList: true, subtree: true, characterData: true });
});
"""


async def test_a_fresh_load_shows_no_connection_banner(dashboard: Dashboard, browsing: Browsing) -> None:
    await browsing.page.add_init_script(RECORD_BANNER)
    page = await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live")
    for route in ("#/workers", "#/queues/background", "#/schedules", "#/"):
        await page.goto(dashboard.url + route)
        await expect(page.locator("#connection")).to_have_text("Live")
    await page.reload()
    await expect(page.locator("#connection")).to_have_text("Live")
    await asyncio.sleep(2.5)  # longer than a drop must last to be announced
    assert await page.evaluate("window.bannerSeen") == []
    await expect(page.locator("#banner")).to_be_hidden()


async def test_a_real_drop_is_announced_and_reconnected_goes_away(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live")
    await dashboard.stop()
    await expect(page.locator("#banner")).to_contain_text("Lost the connection")
    await dashboard.start()
    await expect(page.locator("#banner")).to_contain_text("Reconnected", timeout=20_000)
    await expect(page.locator("#banner")).to_be_hidden(timeout=8_000)
    await expect(page.locator("#connection")).to_have_text("Live")


async def test_a_first_connection_that_fails_before_going_live_is_not_called_lost(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    page = browsing.page
    await page.add_init_script(RECORD_BANNER)
    tries: list[int] = []

    async def flaky_first_connect(ws: Any) -> None:
        tries.append(1)
        if len(tries) == 1:
            await ws.close(code=1011, reason="busy")  # as a proxy or a server still starting may answer
        else:
            ws.connect_to_server()

    await page.route_web_socket("**/graphql", flaky_first_connect)
    await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live", timeout=20_000)
    await asyncio.sleep(2.5)
    assert len(tries) >= 2
    assert await page.evaluate("window.bannerSeen") == []


@pytest.fixture
async def many_queues(redis_url: str) -> AsyncIterator[Conveyor]:
    """An app with eight queues: the overview needs more subscriptions than one connection carries."""
    extra = {name: {"concurrency": 1} for name in ("emails", "reports", "exports", "webhooks", "thumbnails")}
    app = Conveyor(load_settings(redis_url=redis_url, conveyor_queues=extra))
    await app.connect()
    yield app
    await app.close()


async def test_opening_one_more_connection_while_live_is_not_called_lost(
    start_dashboard: StartDashboard, browsing: Browsing, many_queues: Conveyor
) -> None:
    dashboard = await start_dashboard(app=many_queues)
    await browsing.page.add_init_script(RECORD_BANNER)
    page = await browsing.open(dashboard)
    await expect(page.locator("[data-queue]")).to_have_count(8)
    await expect(page.locator("#connection")).to_have_text("Live")
    await asyncio.sleep(2.5)
    assert await page.evaluate("window.bannerSeen") == []
