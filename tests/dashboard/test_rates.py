"""Jobs per second: unknown ("—") until measured, then over the last minute, not averaged over an hour."""

from __future__ import annotations

from playwright.async_api import expect

from tests.dashboard.conftest import Browsing, Dashboard

# 28 minutes of a quiet queue, then a minute at 3 jobs per second, in 2-second samples as the page receives them.
RATE_OF_A_BUSY_LAST_MINUTE = """async () => {
  const { ThroughputHistory } = await import('./static/js/live.js');
  const { rate } = await import('./static/js/format.js');
  const history = new ThroughputHistory({ keep: 900 });
  const unknown = rate(history.jobsPerSecond());
  let t = Date.parse('2026-01-01T00:00:00Z');
  const sample = (completed) => {
    history.add({ start: new Date(t).toISOString(), end: new Date(t + 2000).toISOString(), completed, failed: 0 });
    t += 2000;
  };
  for (let i = 0; i < 840; i += 1) sample(0);
  for (let i = 0; i < 30; i += 1) sample(6);
  return [unknown, rate(history.jobsPerSecond())];
}"""


async def test_jobs_per_second_reads_unknown_until_the_first_sample(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard)
    jobs = page.locator('[data-queue="background"] [data-rate="jobs"]')
    await expect(jobs).to_have_text("—")
    await expect(page.locator(".summary")).to_contain_text("— jobs/s")
    await expect(jobs).to_have_text("0")  # the first sample (2 s) says nothing ran
    await expect(page.locator(".summary")).to_contain_text("0 jobs/s (last minute)")


async def test_jobs_per_second_is_the_last_minutes_rate(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live")
    unknown, busy = await page.evaluate(RATE_OF_A_BUSY_LAST_MINUTE)
    assert unknown == "—"
    assert busy == "3.0"


async def test_the_queue_page_shows_the_last_minutes_rate(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard, route="#/queues/background")
    caption = page.locator(".chart-box + .help")
    await expect(caption).to_contain_text("Now: 0 jobs/s over the last minute")
