"""The tenants page: a deployment admin saves a tenant with quotas, edits and removes it; nobody else sees it."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor.api import TokenStore
from conveyor.app.tenants import TenantConveyor
from conveyor.queue.tenants import TenantStore
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard


def _store(dashboard: Dashboard) -> TenantStore:
    return TenantStore(dashboard.app.client, dashboard.app.settings.conveyor_prefix)


async def test_an_admin_adds_a_tenant_with_quotas_edits_and_removes_it(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    page = await browsing.open(dashboard, role="admin")
    await page.get_by_role("link", name="Tenants", exact=True).click()
    await expect(page.get_by_text("No tenants yet.")).to_be_visible()
    await page.get_by_label("Tenant id").fill("acme")
    await page.get_by_label("Max waiting jobs").fill("500")
    await page.get_by_label("Max payload bytes").fill("65536")
    await page.get_by_label("Rate limit: jobs").fill("10")
    await page.get_by_label("Rate limit: per (ms)").fill("1000")
    await page.get_by_role("button", name="Save tenant").click()

    row = page.locator('.tenants-table tr[data-tenant="acme"]')
    await expect(row).to_contain_text("500")
    await expect(row).to_contain_text("65,536 B")
    await expect(row).to_contain_text("10 jobs per 1.0 s")
    [saved] = await _store(dashboard).all()
    quotas = saved.quotas
    assert (saved.id, quotas.max_waiting_jobs, quotas.max_payload_bytes) == ("acme", 500, 65536)
    assert quotas.rate_limit is not None
    assert (quotas.rate_limit.max, quotas.rate_limit.duration_ms) == (10, 1000)
    await browsing.screenshot("tenants")

    await page.get_by_role("button", name="Edit quotas of tenant acme").click()
    await expect(page.get_by_label("Tenant id")).to_have_value("acme")
    await page.get_by_label("Max waiting jobs").fill("")
    await page.get_by_role("button", name="Save tenant").click()
    await page.get_by_role("dialog").get_by_role("button", name="Replace").click()
    await expect(row.locator("td").nth(2)).to_have_text("unlimited")
    assert (await _store(dashboard).get("acme")).quotas.max_waiting_jobs is None

    await page.get_by_role("button", name="Remove tenant acme").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Remove tenant")
    await expect(confirm).to_be_disabled()
    await dialog.get_by_label("Type acme to confirm").fill("acm")
    await expect(confirm).to_be_disabled()
    await dialog.get_by_label("Type acme to confirm").fill("acme")
    await confirm.click()
    await expect(page.locator(".toast").filter(has_text="Removed tenant acme")).to_be_visible()
    await expect(row).to_have_count(0)
    assert await _store(dashboard).all() == []


async def test_a_rate_limit_needs_both_its_fields(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, role="admin", route="#/tenants")
    await page.get_by_label("Tenant id").fill("half")
    await page.get_by_label("Rate limit: jobs").fill("10")
    await page.get_by_role("button", name="Save tenant").click()
    await expect(page.get_by_role("alert").filter(has_text="both a number of jobs and a window")).to_be_visible()
    assert await _store(dashboard).all() == []


async def test_only_deployment_admins_see_tenants(dashboard: Dashboard, browsing: Browsing) -> None:
    await _store(dashboard).save("acme")
    scoped = await TokenStore(dashboard.app.client, dashboard.app.settings.conveyor_prefix).create(
        "scoped admin", "admin", queues=["background"]
    )
    dashboard.tokens["scoped-admin"] = scoped.token
    for role in ("viewer", "operator", "scoped-admin"):
        tab = await browsing.context.new_page()
        token = dashboard.tokens[role]
        await tab.add_init_script(f"sessionStorage.setItem('conveyor.token', {token!r})")
        await tab.goto(dashboard.url + "#/tenants")
        await expect(tab.get_by_text("Tenants are managed by deployment admins only")).to_be_visible()
        await expect(tab.get_by_role("link", name="Tenants", exact=True)).to_be_hidden()
        await expect(tab.locator('tr[data-tenant="acme"]')).to_have_count(0)
        await expect(tab.get_by_role("button", name="Remove tenant acme")).to_have_count(0)
        await expect(tab.get_by_label("Tenant id")).to_have_count(0)
        await tab.close()


async def test_the_tenants_page_works_under_a_url_prefix(start_dashboard: StartDashboard, browsing: Browsing) -> None:
    dashboard = await start_dashboard(prefix="/ops/conveyor", mode="header")
    page = await browsing.open(dashboard, role="admin")
    await page.get_by_role("link", name="Tenants", exact=True).click()
    await page.get_by_label("Tenant id").fill("beta")
    await page.get_by_role("button", name="Save tenant").click()
    await expect(page.locator('.tenants-table tr[data-tenant="beta"]')).to_contain_text("unlimited")
    inside = f"http://127.0.0.1:{dashboard.port}/ops/conveyor/"
    outside = [url for url in browsing.requests if not url.startswith((inside, inside.replace("http", "ws", 1)))]
    assert not outside, f"requests outside the prefix: {outside}"


async def test_an_admin_sees_a_tenants_queues_with_their_counts(dashboard: Dashboard, browsing: Browsing) -> None:
    await _store(dashboard).save("acme")
    acme = TenantConveyor(dashboard.app, "acme")
    for n in range(3):
        await acme.add("background", "ok", {"n": n}, delay_ms=600_000)
    await dashboard.app.add("background", "ok", {}, delay_ms=600_000)  # the deployment's own: not acme's
    page = await browsing.open(dashboard, role="admin", route="#/tenants")
    button = page.get_by_role("button", name="Queues of tenant acme")
    await button.click()
    await expect(button).to_have_attribute("aria-expanded", "true")
    queues = page.locator(".tenant-queues-table")
    await expect(queues.locator('tr[data-queue="background"] [data-field="delayed"]')).to_have_text("3")
    await expect(queues.locator('tr[data-queue="indexing"] [data-field="delayed"]')).to_have_text("0")
    await browsing.screenshot("tenant-queues")
    await button.click()
    await expect(queues).to_have_count(0)
