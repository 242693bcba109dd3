"""The page stays correct through restarts: it reconnects by itself, says so, and live updates resume."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import expect

from conveyor import Conveyor, NewJob, load_settings
from conveyor.redis.embedded import EmbeddedRedis
from tests.api.worker_app import register_handlers
from tests.conftest import OwnRedisFactory
from tests.dashboard.conftest import Browsing, Dashboard, StartDashboard


async def test_overview_reconnects_after_the_server_restarts(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard)
    card = page.locator('[data-queue="background"]')
    await expect(page.locator("#connection")).to_have_text("Live")

    await dashboard.restart(pause_s=1.5)
    await expect(page.locator("#banner")).to_contain_text("Reconnected", timeout=20_000)
    await expect(page.locator("#connection")).to_have_text("Live")
    await dashboard.app.add_bulk("background", [NewJob("ok", {}) for _ in range(4)])
    await expect(card.locator("[data-warning]")).to_contain_text("4 jobs are waiting")


async def test_overview_says_when_the_server_is_gone(dashboard: Dashboard, browsing: Browsing) -> None:
    page = await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live")
    await dashboard.stop()
    await expect(page.locator("#banner")).to_contain_text("Reconnecting")
    await expect(page.locator("#connection")).to_have_text("Reconnecting…")
    await browsing.screenshot("overview-reconnecting")
    await dashboard.start()
    await expect(page.locator("#banner")).to_contain_text("Reconnected", timeout=20_000)


@pytest.fixture
async def own_app(own_redis: OwnRedisFactory) -> AsyncIterator[tuple[Conveyor, EmbeddedRedis]]:
    server = own_redis(transport="tcp")
    app = register_handlers(Conveyor(load_settings(redis_url=server.url)))
    await app.connect()
    yield app, server
    await app.close()


async def test_overview_recovers_after_redis_restarts(
    start_dashboard: StartDashboard, browsing: Browsing, own_app: tuple[Conveyor, EmbeddedRedis]
) -> None:
    app, server = own_app
    dashboard = await start_dashboard(app=app)
    page = await browsing.open(dashboard)
    card = page.locator('[data-queue="background"]')
    await expect(page.locator("#connection")).to_have_text("Live")

    await asyncio.to_thread(server.stop)
    await expect(page.locator("#banner")).to_contain_text("interrupted", timeout=20_000)
    await asyncio.to_thread(server.start)
    await expect(page.locator("#banner")).to_contain_text("Reconnected", timeout=30_000)
    await app.add_bulk("background", [NewJob("ok", {}) for _ in range(2)])
    await expect(card.locator("[data-warning]")).to_contain_text("2 jobs are waiting", timeout=15_000)
