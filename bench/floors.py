"""Floors under two of issue 18's targets, measured in the same run as the figures they bound.

- **The worker's libraries alone** (`libraries_rss_mib`): a process of the run lock's Python that imports every
  module a real `conveyor worker --app bench.cli_app:app` imported on its way to serving (listed from that
  start with `PYTHONPROFILEIMPORTTIME`), except Conveyor's own and the benchmark app's. Its RSS is what
  asyncio with ssl, uvloop, redis-py, pydantic, pydantic-settings, Typer and the rest take before any line of
  Conveyor runs: no worker built on those libraries can be smaller.
- **The pinned add script alone** (`add_script_alone`): the BullMQ add script `Conveyor.add` runs for a job with
  the default options (`addPrioritizedJob`: the default priority is `normal`) called one by one over Conveyor's
  own connection (`conveyor.redis.lane`), with everything built ahead: the keys, the payload's JSON, the
  options Conveyor stores by default, the ids themselves. No validation, no options or ids
  made per call: the fastest one-by-one enqueue on BullMQ's scripts from a Python process, which
  `Conveyor.add` can approach but not pass.
"""

from __future__ import annotations

import os
import subprocess
import time

from redis.asyncio.client import Redis

from bench.cli_app import QUEUE
from bench.common import WorkerProcess
from bench.worker_kinds import WorkerKinds, ready
from conveyor.config import QueueSettings
from conveyor.queue.options import DEFAULT_OPTIONS, bullmq_options
from conveyor.redis.keys import QueueKeys
from conveyor.redis.lane import close_lane
from conveyor.redis.scripts import QueueScripts, add_script_name, pack, script_source

OWN_MODULES = ("conveyor", "bench", "__main__")
# Imports the modules named on stdin's first line (space-separated, in the order the worker imported them; those
# that failed in the worker fail here too), says ready, then waits for stdin to close.
IMPORTER = """
import importlib, sys
for name in sys.stdin.readline().split():
    try:
        importlib.import_module(name)
    except Exception:
        pass
print("ready", flush=True)
sys.stdin.read()
"""


def worker_library_modules(kinds: WorkerKinds, url: str) -> list[str]:
    """The modules `conveyor worker` imports on its way to serving, Conveyor's own and the app's left out."""
    log = kinds.logs / "cli-imports.log"
    log.unlink(missing_ok=True)
    proc = kinds.spawn("cli", url, "noop", env={"PYTHONPROFILEIMPORTTIME": "1"}, stderr=log)
    try:
        ready(proc, "cli")
    finally:
        WorkerProcess(proc).stop()
    names: dict[str, None] = {}  # in import order, each once
    for line in log.read_text().splitlines():
        if line.startswith("import time:") and not line.endswith("imported package"):
            name = line.rsplit("|", 1)[1].strip()
            if name.partition(".")[0] not in OWN_MODULES:
                names[name] = None
    return list(names)


def libraries_rss_mib(kinds: WorkerKinds, modules: list[str]) -> float:
    """RSS (MiB) of the run lock's Python once it imported `modules` and nothing of Conveyor."""
    python = kinds.cli_script.with_name("python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(kinds.pycache)
    cwd = kinds.logs  # not the checkout: `conveyor` must not be importable from the working directory by accident
    args = [str(python), "-c", IMPORTER]
    proc = subprocess.Popen(args, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(" ".join(modules) + "\n")
        proc.stdin.flush()
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the library importer did not start")
        return WorkerProcess(proc).rss_mib()
    finally:
        proc.stdin.close()
        proc.wait(30)


async def add_script_alone(url: str, jobs: int) -> tuple[float, float]:
    """Seconds and CPU seconds for `jobs` calls of BullMQ's add script, one by one, each awaited (see above)."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        scripts = QueueScripts(client, QueueKeys("bull", QUEUE))
        now = int(time.time() * 1000)
        options = bullmq_options(DEFAULT_OPTIONS, QueueSettings(), now)
        name = add_script_name(options)  # the script `Conveyor.add` runs for a job with the default options
        script, keys, opts = client.register_script(script_source(name)), scripts.add_keys[name], pack(options)
        base = scripts.keys.base
        headers = [pack([base, f"floor-{i}", "job", now, None, None, None, None, None]) for i in range(jobs + 1)]
        await scripts.lane.run(script, keys, [headers[-1], '{"n":1}', opts])  # loads the script, connects
        cpu0, started = time.process_time(), time.perf_counter()
        for header in headers[:jobs]:
            await scripts.lane.run(script, keys, [header, '{"n":1}', opts])
        return time.perf_counter() - started, time.process_time() - cpu0
    finally:
        close_lane(client)
        await client.aclose()
