"""Take the README's dashboard screenshots from a demo cluster: `python -m tests.dashboard.showcase docs/screenshots`.

Starts an embedded Redis, a worker running `demo_app.py`, and the API in development mode (no sign-in), feeds the
queues for a while, and photographs the overview and a job that failed all its attempts. The worker runs from a
temporary directory, so the stack traces in the pictures show no path of this machine.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Browser, async_playwright, expect

import conveyor
from conveyor import Conveyor, NewJob, load_settings
from conveyor.api import ApiConfig, ApiServer
from conveyor.redis.embedded import EmbeddedRedis
from tests.dashboard import demo_app
from tests.dashboard.conftest import CHROMIUM_ARGS, chromium_path

NAMES = ["index.ts", "main.ts", "routes.ts", "schema.ts", "button.tsx", "util.ts"]


def demo_tree() -> Path:
    """A neutral directory holding the demo app and a link to the conveyor package."""
    root = Path(tempfile.gettempdir()) / "conveyor-demo"
    shutil.rmtree(root, ignore_errors=True)
    (root / "site").mkdir(parents=True)
    (root / "app").mkdir()
    (root / "site" / "conveyor").symlink_to(Path(conveyor.__file__).parent)
    shutil.copy(demo_app.__file__, root / "app" / "demo_app.py")
    return root


async def produce(app: Conveyor, seconds: float) -> None:
    """Enqueue a plausible mix of jobs for `seconds`."""
    loop = asyncio.get_running_loop()
    end, n = loop.time() + seconds, 0
    while loop.time() < end:
        batch = [NewJob("index-file", {"filePath": f"src/module{n + i}/{random.choice(NAMES)}"}) for i in range(6)]
        await app.add_bulk("indexing", batch)
        if random.random() < 0.3:
            await app.add("ai-processing", "summarize", {"symbol": f"Parser.parse{n}"})
        if random.random() < 0.5:
            await app.add("background", "cleanup-temp-files", {"olderThanHours": 24})
        n += 10
        await asyncio.sleep(random.uniform(0.2, 0.6))


async def photograph(browser: Browser, url: str, app: Conveyor, failing: str, out: Path) -> None:
    context = await browser.new_context(viewport={"width": 1360, "height": 820}, color_scheme="dark")
    page = await context.new_page()
    await page.goto(url)
    await produce(app, 50)
    await page.wait_for_timeout(1200)  # let the last count changes settle
    await page.screenshot(path=str(out / "overview.png"))
    await page.goto(f"{url}#/queues/indexing/jobs/{failing}")
    await expect(page.locator(".page-head .badge")).to_have_text("failed", timeout=30_000)
    await page.set_viewport_size({"width": 1360, "height": 1000})
    await page.screenshot(path=str(out / "failed-job.png"))
    await context.close()


async def serve_and_photograph(redis: EmbeddedRedis, out: Path) -> None:
    app = demo_app.register(Conveyor(load_settings(redis_url=redis.url)))
    await app.connect()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = ApiConfig(production=False, anonymous_loopback=True, ready_requires_workers=False)
    server = ApiServer(app, config, sock=sock, handle_signals=False)
    task = asyncio.create_task(server.serve())
    try:
        await server.wait_started()
        data = {"filePath": "src/legacy/parser.ts", "repo": "acme/webapp"}
        backoff = {"type": "exponential", "delay": 500}
        failing = await app.add("indexing", "index-file", data, attempts=3, backoff=backoff)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            await photograph(browser, f"http://127.0.0.1:{server.port}/", app, failing, out)
            await browser.close()
    finally:
        server.request_stop()
        await task
        await app.close()


def main(out: Path) -> None:
    """Run the demo cluster, take the pictures into `out`, and clean up."""
    root = demo_tree()
    redis = EmbeddedRedis(root / "redis", transport="tcp")
    redis.start()
    env = {**os.environ, "REDIS_URL": redis.url, "PYTHONPATH": f"{root / 'site'}{os.pathsep}{root / 'app'}"}
    code = "import asyncio, demo_app; asyncio.run(demo_app.main())"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=root / "app")
    try:
        asyncio.run(serve_and_photograph(redis, out))
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/dashboard/showcase")
    target.mkdir(parents=True, exist_ok=True)
    main(target)
