"""Access: signing in with a token, the UI showing only what the role may do, the server refusing the rest."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from conveyor import NewJob
from tests.dashboard.conftest import TOKEN_KEY, Browsing, Dashboard, StartDashboard

ACTION_NAMES = ("Pause", "Resume", "Retry all failed", "Clear queue…", "Retry", "Remove", "Cancel", "Promote")


async def forge(page: Any, query: str) -> dict[str, Any]:
    """POST a GraphQL document from the page with the token the page holds, bypassing the UI."""
    result: dict[str, Any] = await page.evaluate(
        """async (query) => {
            const token = sessionStorage.getItem('conveyor.token');
            const response = await fetch('graphql', {
                method: 'POST',
                headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
                body: JSON.stringify({ query }),
            });
            return await response.json();
        }""",
        query,
    )
    return result


async def test_sign_in_with_a_token_and_out_again(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, role=None)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await browsing.screenshot("sign-in")
    await page.get_by_label("API token").fill("cvy_0000000000000000_notavalidsecretatallreally")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert").filter(has_text="not valid")).to_be_visible()

    await page.get_by_label("API token").fill(dashboard.tokens["viewer"])
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("viewer")
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") == dashboard.tokens["viewer"]

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None


async def test_a_viewer_sees_no_action_buttons(dashboard: Dashboard, browsing: Browsing) -> None:
    [job_id] = await dashboard.app.add_bulk("background", [NewJob("ok", {})])
    page = await browsing.open(dashboard, role="viewer", route="#/queues/background")
    await expect(page.locator(".jobs-table tbody tr")).to_have_count(1)
    await expect(page.locator(".bulk")).to_be_hidden()
    await expect(page.locator(".jobs-table input[type=checkbox]")).to_have_count(0)
    for name in ACTION_NAMES:
        await expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    await expect(page.get_by_role("button", name="Pause queue background")).to_have_count(0)
    await browsing.screenshot("queue-viewer")

    await page.goto(f"{dashboard.url}#/queues/background/jobs/{job_id}")
    await expect(page.locator("h1")).to_have_text(f"Job {job_id}")
    await expect(page.locator(".page-head .badge")).to_be_visible()
    await expect(page.locator(".page-head .actions button")).to_have_count(0)


async def test_a_forged_mutation_from_a_viewer_is_refused(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, role="viewer")
    await expect(page.locator("#who")).to_contain_text("viewer")
    result = await forge(page, 'mutation { pauseQueue(name: "background") }')
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", result
    assert not await dashboard.app.queue("background").is_paused()


async def test_an_operator_sees_no_clear_button_and_cannot_clear(dashboard: Dashboard, browsing: Browsing) -> None:
    await dashboard.app.add_bulk("background", [NewJob("ok", {}) for _ in range(2)])
    page = await browsing.open(dashboard, role="operator", route="#/queues/background")
    await expect(page.get_by_role("button", name="Pause queue background")).to_be_visible()
    await expect(page.get_by_role("button", name="Clear queue…")).to_have_count(0)
    result = await forge(page, 'mutation { clearQueue(name: "background", force: true) }')
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN", result
    counts = await dashboard.app.queue("background").counts()
    assert counts.waiting == 2


async def test_local_development_mode_needs_no_sign_in(start_dashboard: StartDashboard, browsing: Browsing) -> None:
    dashboard = await start_dashboard(production=False, anonymous_loopback=True)
    page = await browsing.open(dashboard, role=None)
    await expect(page.get_by_role("heading", name="Queues")).to_be_visible()
    await expect(page.locator("#who")).to_contain_text("local development")
    await expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
