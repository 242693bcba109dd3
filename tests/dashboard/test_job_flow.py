"""The job page's flow section: a parent's children (nested, loaded on demand, linked), a child's parent, and the
results of completed children."""

from __future__ import annotations

from playwright.async_api import expect

from conveyor.queue.flows import FlowJob, Flows
from conveyor.queue.job import JobState
from tests.dashboard.conftest import Browsing, Dashboard, WorkerProcesses, wait_until


async def test_a_flow_shows_its_children_nested_with_links_that_open_them(
    dashboard: Dashboard, browsing: Browsing
) -> None:
    grandchild = FlowJob("background", "ok", {"result": "g"})
    tree = FlowJob(
        "background",
        "ok",
        {},
        children=(FlowJob("background", "steps", {}, children=(grandchild,)), FlowJob("background", "sleep", {})),
    )
    added = await Flows.of(dashboard.app).add(tree)
    first, second = added.children
    [leaf] = first.children

    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{added.job_id}")
    children = page.get_by_role("list", name="Children of this job").locator(":scope > li")
    await expect(children).to_have_count(2)
    await expect(page.locator(f'li[data-job="{first.job_id}"] > .badge')).to_have_text("waiting children")
    second_state = (await dashboard.app.queue("background").get_job(second.job_id)).state
    await expect(page.locator(f'li[data-job="{second.job_id}"] > .badge')).to_have_text(
        second_state.value.replace("-", " ")
    )
    await expect(page.locator(f'li[data-job="{leaf.job_id}"]')).to_have_count(0)  # loaded only on demand

    toggle = page.get_by_role("button", name=f"Show the 1 child of job {first.job_id}")
    await expect(toggle).to_have_attribute("aria-expanded", "false")
    await toggle.press("Enter")
    await expect(toggle).to_have_attribute("aria-expanded", "true")
    await expect(page.locator(f'li[data-job="{leaf.job_id}"]')).to_contain_text(f"ok · {leaf.job_id}")
    await browsing.screenshot("job-flow")
    await page.get_by_role("button", name="Use the light theme").click()
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    await browsing.screenshot("job-flow-light")

    await page.get_by_role("link", name=f"steps · {first.job_id}").click()
    await expect(page.locator("h1")).to_have_text(f"Job {first.job_id}")
    await page.get_by_role("link", name=f"Parent job {added.job_id}").click()
    await expect(page.locator("h1")).to_have_text(f"Job {added.job_id}")
    await page.locator(f'li[data-job="{second.job_id}"] a').click()
    await expect(page.locator("h1")).to_have_text(f"Job {second.job_id}")
    await expect(page.get_by_role("link", name=f"Parent job {added.job_id}")).to_be_visible()


async def test_a_completed_chain_shows_the_previous_step_and_its_result(
    dashboard: Dashboard, browsing: Browsing, worker_processes: WorkerProcesses
) -> None:
    steps = [FlowJob("background", "ok", {"result": f"step {n}"}) for n in (1, 2)]
    first_id, last_id = await Flows.of(dashboard.app).add_chain(steps)
    worker_processes.start("background")
    queue = dashboard.app.queue("background")

    async def done() -> bool:
        return (await queue.get_job(last_id)).state is JobState.COMPLETED

    await wait_until(done, timeout=30)
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{last_id}")
    child = page.locator(f'li[data-job="{first_id}"]')
    await expect(child.locator(".badge")).to_have_text("completed")
    await expect(page.get_by_label("Children's results")).to_contain_text('"step 1"')
    await page.get_by_role("link", name=f"ok · {first_id}").click()
    await expect(page.locator("h1")).to_have_text(f"Job {first_id}")
    await expect(page.get_by_role("link", name=f"Parent job {last_id}")).to_be_visible()


async def test_a_job_outside_any_flow_shows_no_flow_section(dashboard: Dashboard, browsing: Browsing) -> None:
    job_id = await dashboard.app.add("background", "ok", {})
    page = await browsing.open(dashboard, route=f"#/queues/background/jobs/{job_id}")
    await expect(page.locator("#s-summary")).to_be_visible()
    await expect(page.locator(".flow-slot")).to_be_hidden()
    await expect(page.locator("#s-flow")).to_have_count(0)
