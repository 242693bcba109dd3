"""The read-only dashboard (CONVEYOR_DASHBOARD_READ_ONLY=1): no control that changes anything, for any role,
and the server refuses changes sent from the browser anyway (a page script or a console cannot get round it)."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from conveyor import JobState, NewJob
from conveyor.queue.options import JobOptions
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard

WRITE_BUTTONS = (
    "Add job…", "Pause", "Retry all failed", "Promote all delayed", "Clean…", "Clear queue…", "Retry", "Promote",
    "Cancel", "Remove", "Duplicate…", "Replay", "Purge…", "Save tenant", "Add schedule",
)  # fmt: skip
# What a script in the page could send, with the signed-in admin's own token.
FORGED_ADD = """async (token) => {
  const response = await fetch('graphql', { method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'mutation { addJob(queueName: "background", type: "ok") { id } }' }) });
  return response.json();
}"""


@pytest.fixture
async def read_only(start_dashboard: StartDashboard, monkeypatch: pytest.MonkeyPatch) -> Dashboard:
    monkeypatch.setenv("CONVEYOR_DASHBOARD_READ_ONLY", "1")
    dashboard = await start_dashboard()
    app = dashboard.app
    await app.add_bulk("background", [NewJob("ok", {"n": n}, JobOptions(delay_ms=600_000)) for n in range(2)])
    await Schedules.of(app).add(key="hourly", queue="background", type="ok", every_ms=3_600_000)
    await TenantStore(app.client, app.settings.conveyor_prefix).save("acme")
    return dashboard


async def test_an_admin_sees_everything_and_can_change_nothing(read_only: Dashboard, browsing: Browsing) -> None:
    app = read_only.app
    delayed = await app.queue("background").job_ids(JobState.DELAYED)
    [job_id, _] = [found for found in delayed if not found.startswith("repeat:")]  # not the schedule's next run
    page = await browsing.open(read_only, role="admin")
    await expect(page.locator("#read-only")).to_have_text("read-only")
    routes = ["#/", "#/queues/background?tab=delayed", f"#/queues/background/jobs/{job_id}", "#/schedules",
              "#/dead-letters/background", "#/tenants"]  # fmt: skip
    for route in routes:
        await page.goto(read_only.url + route)
        await expect(page.locator("main h1")).to_be_visible()
        await page.wait_for_load_state("networkidle")
        for name in WRITE_BUTTONS:
            await expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
        await expect(page.locator("main input[type=checkbox]")).to_have_count(0)
    await page.goto(read_only.url + "#/queues/background?tab=delayed")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(3)  # reading still works (2 jobs + a run)
    await page.goto(read_only.url + "#/tenants")
    await page.get_by_role("button", name="Queues of tenant acme").click()
    await expect(page.locator(".tenant-queues-table")).to_be_visible()

    answer = await page.evaluate(FORGED_ADD, read_only.tokens["admin"])
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "read-only" in answer["errors"][0]["message"]
    assert (await app.queue("background").counts()).delayed == 3  # the two jobs and the schedule's next run
    assert (await app.queue("background").counts()).prioritized == 0
