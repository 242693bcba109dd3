"""Behind a reverse proxy: the dashboard works under a URL prefix, from the root path or the proxy's header."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from conveyor import NewJob
from tests.dashboard.conftest import Browsing, StartDashboard

PREFIX = "/ops/conveyor"


@pytest.mark.parametrize("mode", ["root_path", "header"])
async def test_dashboard_works_under_a_url_prefix(
    start_dashboard: StartDashboard, browsing: Browsing, mode: str
) -> None:
    dashboard = await start_dashboard(prefix=PREFIX, mode=mode)
    page = await browsing.open(dashboard)
    card = page.locator('[data-queue="background"]')
    await expect(page.locator("#connection")).to_have_text("Live")
    await dashboard.app.add_bulk("background", [NewJob("ok", {}) for _ in range(3)])
    await expect(card.locator("[data-warning]")).to_contain_text("3 jobs are waiting")  # pushed over the websocket
    await card.get_by_role("link", name="background").click()
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(3)
    origin = f"http://127.0.0.1:{dashboard.port}"
    outside = [url for url in browsing.requests if not url.startswith(origin + PREFIX + "/")]
    assert not outside, f"requests outside the prefix: {outside}"
    assert page.url.startswith(origin + PREFIX + "/#/queues/background")
