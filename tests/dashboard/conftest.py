"""Fixtures for the dashboard's browser tests: a real API server (uvicorn) serving the dashboard, optionally
behind a URL prefix as a reverse proxy would mount it, worker processes, and headless Chromium driven by
Playwright. The system's Chromium is used (Playwright's own browser download is never needed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.async_api import async_playwright, expect
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor import Conveyor, load_settings
from conveyor.api import ApiConfig, TokenStore, create_api
from tests.api.conftest import WorkerProcesses
from tests.api.worker_app import register_handlers
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
# Playwright's 5 s default makes a busy 2-core machine (Chromium, uvicorn, workers and Redis on it) fail tests
# that are not about timing; what the page must show is still checked, only the patience is longer.
UI_TIMEOUT_MS = 20_000
expect.set_options(timeout=UI_TIMEOUT_MS)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TOKEN_KEY = "conveyor.token"

__all__ = ["WorkerProcesses", "wait_until"]


def chromium_path() -> str | None:
    """The system's Chromium (CONVEYOR_CHROMIUM overrides the search)."""
    configured = os.environ.get("CONVEYOR_CHROMIUM")
    if configured:
        return configured
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


class PrefixProxy:
    """What a reverse proxy does in front of Conveyor when it serves it under `prefix`.

    mode "root_path": the path keeps the prefix and the ASGI `root_path` names it (uvicorn `--root-path`);
    mode "header": the proxy strips the prefix and says it in `X-Forwarded-Prefix`.
    """

    def __init__(self, app: ASGIApp, prefix: str, mode: str) -> None:
        self.app = app
        self.prefix = prefix
        self.mode = mode

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 404, "headers": []})
                await send({"type": "http.response.body", "body": b"outside the prefix"})
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        if self.mode == "root_path":
            scope = {**scope, "root_path": self.prefix}
        else:
            inner = path[len(self.prefix) :] or "/"
            headers = [*scope["headers"], (b"x-forwarded-prefix", self.prefix.encode())]
            scope = {**scope, "path": inner, "raw_path": inner.encode(), "headers": headers}
        await self.app(scope, receive, send)


class Dashboard:
    """A running API server with the dashboard, tokens for each role, and a way to restart it."""

    def __init__(self, app: Conveyor, asgi: Callable[[], ASGIApp], tokens: dict[str, str], prefix: str) -> None:
        self.app = app
        self.make_asgi = asgi
        self.tokens = tokens
        self.prefix = prefix
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The dashboard's address (ending with `/`)."""
        return f"http://127.0.0.1:{self.port}{self.prefix}/"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.make_asgi(), lifespan="on", log_config=None, ws="websockets-sansio", timeout_graceful_shutdown=1
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        await wait_until(lambda: self._server is not None and self._server.started, timeout=10)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await asyncio.wait_for(self._task, 15)
        self._server = self._task = None

    async def restart(self, pause_s: float = 1.0) -> None:
        """Stop the server, stay down for `pause_s`, and start it again on the same port."""
        await self.stop()
        await asyncio.sleep(pause_s)
        await self.start()


class _QuietServer(uvicorn.Server):
    """uvicorn's server leaving the signals to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


StartDashboard = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
async def dashboard_app(redis_url: str) -> AsyncIterator[Conveyor]:
    """The app the dashboard's server serves (the test's Redis and the API tests' handlers)."""
    app = register_handlers(Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2)))
    await app.connect()
    yield app
    await app.close()


@pytest.fixture
async def start_dashboard(dashboard_app: Conveyor) -> AsyncIterator[StartDashboard]:
    """Start dashboard servers: `await start_dashboard(prefix="/ops", mode="header", **api_config)`."""
    running: list[Dashboard] = []

    async def start(
        *, app: Conveyor | None = None, prefix: str = "", mode: str = "root_path", **overrides: Any
    ) -> Dashboard:
        target = app or dashboard_app
        settings: dict[str, Any] = {"production": True, "ready_requires_workers": False, "shutdown_grace_s": 1}
        config = ApiConfig(**{**settings, **overrides})

        def asgi() -> ASGIApp:
            api = create_api(target, config)
            return PrefixProxy(api, prefix, mode) if prefix else api

        store = TokenStore(target.client, target.settings.conveyor_prefix)
        tokens = {role: (await store.create(f"test {role}", role)).token for role in ("viewer", "operator", "admin")}
        dashboard = Dashboard(target, asgi, tokens, prefix)
        await dashboard.start()
        running.append(dashboard)
        return dashboard

    yield start
    for dashboard in running:
        await dashboard.stop()


@pytest.fixture
async def dashboard(start_dashboard: StartDashboard) -> Dashboard:
    """The dashboard at `/` of a production-mode API server."""
    return await start_dashboard()


@pytest.fixture
def worker_processes(redis_url: str) -> Any:
    """Worker processes of the API tests' app, against the test's Redis (stopped after the test)."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless system Chromium for the whole session."""
    executable = chromium_path()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: the dashboard tests need it (bootstrap.py installs it)")
        pytest.skip("no Chromium on this machine (install the distribution's chromium package)")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Browsing:
    """A browser tab for one test: signs in with a role's token, records every request and page error."""

    def __init__(self, context: Any, page: Any, name: str) -> None:
        self.context = context
        self.page = page
        self.name = name
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)

    async def open(self, dashboard: Dashboard, role: str | None = "operator", route: str = "") -> Any:
        """Open the dashboard signed in as `role` (None: not signed in) at `route` (e.g. `#/workers`)."""
        if role is not None:
            # As if signed in before: the token is in sessionStorage before the page's scripts run.
            token = dashboard.tokens[role]
            await self.page.add_init_script(f"sessionStorage.setItem({TOKEN_KEY!r}, {token!r})")
        await self.page.goto(dashboard.url + route)
        return self.page

    async def screenshot(self, name: str) -> Path:
        """Save a full-page screenshot as a test artifact."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def browsing(browser: Any, request: pytest.FixtureRequest) -> AsyncIterator[Browsing]:
    """A fresh browser context and tab (empty sessionStorage); fails the test on page errors or requests
    that leave the Conveyor server."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900}, color_scheme="dark")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = await context.new_page()
    tab = Browsing(context, page, request.node.name)
    yield tab
    await context.close()
    external = [url for url in tab.requests if not url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:"))]
    assert not external, f"the dashboard made external requests: {external}"
    unexpected = [e for e in tab.errors if "WebSocket" not in e and "Failed to load resource" not in e]
    assert not unexpected, f"errors in the page: {unexpected}"
