"""At a phone's width (390 px) every page fits: nothing scrolls sideways, and the nav and the job tabs are all
on screen (wide tables scroll inside their own box)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from conveyor.queue.job import JobState
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore
from tests.api.conftest import running_worker
from tests.dashboard.conftest import Browsing, Dashboard, wait_until

WIDTH, HEIGHT = 390, 844


@pytest.fixture
async def phone(browsing: Browsing) -> Browsing:
    """The test's tab, resized to a phone's viewport."""
    await browsing.page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    return browsing


async def seed(dashboard: Dashboard) -> dict[str, str]:
    """A failed job with a long error (and its dead letter), a delayed one, a schedule and a tenant."""
    app = dashboard.app
    failed = await app.add("background", "fail", {"reason": "x" * 300, "path": "/a/very/long/path/" * 8}, attempts=1)
    async with running_worker(app, "background"):
        await wait_until(lambda: _failed(app.queue("background"), failed), timeout=20)
    delayed = await app.add("background", "ok", {"n": 1}, delay_ms=600_000)
    schedule = "nightly-cleanup-of-temporary-files"
    await Schedules.of(app).add(key=schedule, queue="background", type="ok", every_ms=3600_000)
    await TenantStore(app.client, app.settings.conveyor_prefix).save("acme-corporation")
    return {"failed": failed, "delayed": delayed}


async def _failed(queue: Any, job_id: str) -> bool:
    return bool(await queue.state_of(job_id) is JobState.FAILED)


async def overflow(page: Page) -> int:
    """How many pixels the document is wider than the viewport."""
    return int(await page.evaluate("document.scrollingElement.scrollWidth")) - WIDTH


async def too_wide(page: Page) -> list[str]:
    """The innermost elements reaching past the viewport's right edge (what to fix), as tag.class."""
    return list(
        await page.evaluate(
            f"""() => {{
              const wide = (e) => e.getBoundingClientRect().right > {WIDTH} || e.scrollWidth > {WIDTH};
              return [...document.querySelectorAll('body *')].filter(wide)
                .filter(e => ![...e.children].some(wide))
              .slice(0, 4).map(e => `${{e.tagName.toLowerCase()}}.${{e.className}}`);
            }}"""
        )
    )


async def off_screen(page: Page, selector: str) -> list[str]:
    """Texts of the visible elements matching `selector` that are not wholly inside the viewport's width."""
    return list(
        await page.locator(selector).evaluate_all(
            f"""els => els.filter(e => e.offsetParent !== null)
                .filter(e => {{ const r = e.getBoundingClientRect(); return r.left < 0 || r.right > {WIDTH}; }})
                .map(e => e.textContent.trim())"""
        )
    )


async def test_no_page_scrolls_sideways_at_390_px(dashboard: Dashboard, phone: Browsing) -> None:
    ids = await seed(dashboard)
    routes = {
        "overview": "#/",
        "queue-failed": "#/queues/background?tab=failed",
        "queue-delayed": "#/queues/background?tab=delayed",
        "job-failed": f"#/queues/background/jobs/{ids['failed']}",
        "job-delayed": f"#/queues/background/jobs/{ids['delayed']}",
        "workers": "#/workers",
        "dead-letters": "#/dead-letters",
        "dead-letter": f"#/dead-letters/background/{ids['failed']}",
        "schedules": "#/schedules",
        "tenants": "#/tenants",
        "code": "#/code?q=anything",
    }
    page = await phone.open(dashboard, role="admin")
    problems = []
    for name, route in routes.items():
        await page.goto(dashboard.url + route)
        await expect(page.locator("main h1")).to_be_visible()
        await page.wait_for_load_state("networkidle")
        await page.wait_for_timeout(300)
        await phone.screenshot(f"mobile-{name}")
        if (extra := await overflow(page)) > 0:
            problems.append(f"{route}: {extra} px wider than the screen, by {await too_wide(page)}")
        if cut := await off_screen(page, ".topbar nav a, .topbar-end > *, [role=tab]"):
            problems.append(f"{route}: cut off: {cut}")
    await page.goto(dashboard.url + "#/queues/background")
    await page.get_by_role("button", name="Add job…").click()
    if cut := await off_screen(page, "dialog, dialog input, dialog textarea, dialog select, dialog button"):
        problems.append(f"the add-job dialog is cut off: {cut}")
    await phone.screenshot("mobile-add-job")
    assert not problems, "\n".join(problems)
