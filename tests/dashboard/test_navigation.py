"""The top bar's navigation highlights the page that is shown, and only that one."""

from __future__ import annotations

from playwright.async_api import Locator, expect

from tests.dashboard.conftest import Browsing, Dashboard

PAGES = {
    "#/": "Overview",
    "#/workers": "Workers",
    "#/dead-letters": "Dead letters",
    "#/schedules": "Schedules",
    "#/code": "Code",
}


async def test_the_current_page_and_only_it_is_highlighted(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, role="admin")
    current = page.locator('.topbar nav a[aria-current="page"]')
    for route, label in [*PAGES.items(), ("#/tenants", "Tenants"), ("#/", "Overview")]:
        await page.locator(".topbar nav").get_by_role("link", name=label, exact=True).click()
        await expect(page).to_have_url(dashboard.url + route)
        await expect(current).to_have_count(1)
        await expect(current).to_have_text(label)
        other = page.locator(".topbar nav a:not([aria-current])").first
        assert await _background(current) != await _background(other)

    await page.goto(dashboard.url + "#/queues/background")
    await expect(page.locator("h1")).to_contain_text("background")
    await expect(current).to_have_count(0)


async def _background(link: Locator) -> str:
    return str(await link.evaluate("a => getComputedStyle(a).backgroundColor"))
