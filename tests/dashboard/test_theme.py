"""Dark and light themes: the toggle switches and remembers the choice."""

from __future__ import annotations

from playwright.async_api import expect

from tests.dashboard.conftest import Browsing, Dashboard


async def test_theme_toggle_switches_to_light_and_is_remembered(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/queues/indexing")
    html = page.locator("html")
    await expect(html).to_have_attribute("data-theme", "dark")  # the browser prefers dark in these tests
    await page.get_by_role("button", name="Use the light theme").click()
    await expect(html).to_have_attribute("data-theme", "light")
    await page.reload()
    await expect(html).to_have_attribute("data-theme", "light")
    await expect(page.locator(".tabs")).to_be_visible()
    await browsing.screenshot("queue-light")
