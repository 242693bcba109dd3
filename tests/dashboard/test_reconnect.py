"""The page stays correct through restarts: it reconnects by itself, says so, and live updates resume."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import WebSocketRoute, expect

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


async def test_a_server_that_cannot_check_the_token_is_interrupted_not_gone(
    start_dashboard: StartDashboard, browsing: Browsing, own_app: tuple[Conveyor, EmbeddedRedis]
) -> None:
    # With Redis away, the page's sockets drop and must connect again, and the server cannot check their token:
    # it answers "try again later", so the page says live updates are interrupted, not that the server is gone.
    app, server = own_app
    dashboard = await start_dashboard(app=app)
    sockets: list[WebSocketRoute] = []

    def through(socket: WebSocketRoute) -> None:
        socket.connect_to_server()
        sockets.append(socket)

    await browsing.page.route_web_socket(re.compile(r"/graphql$"), through)
    page = await browsing.open(dashboard)
    await expect(page.locator("#connection")).to_have_text("Live")

    await asyncio.to_thread(server.stop)
    for socket in list(sockets):
        await socket.close(code=1001, reason="dropped by the test")
    await expect(page.locator("#connection")).to_have_text("Interrupted", timeout=20_000)
    await expect(page.locator("#banner")).to_contain_text("Redis is unavailable")
    await asyncio.to_thread(server.start)
    await expect(page.locator("#banner")).to_contain_text("Reconnected", timeout=30_000)
    await expect(page.locator("#connection")).to_have_text("Live")


async def test_a_page_opened_while_redis_is_away_says_so_and_loads_once_it_is_back(
    start_dashboard: StartDashboard, browsing: Browsing, own_app: tuple[Conveyor, EmbeddedRedis]
) -> None:
    app, server = own_app
    dashboard = await start_dashboard(app=app)
    await asyncio.to_thread(server.stop)
    page = await browsing.open(dashboard)
    await expect(page.locator("#main")).to_contain_text("Redis is unavailable")
    await asyncio.to_thread(server.start)
    await expect(page.locator('[data-queue="background"]')).to_be_visible(timeout=30_000)
    await expect(page.locator("#connection")).to_have_text("Live")
