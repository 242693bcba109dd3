"""Helpers shared by the test packages: run a worker for a block, and poll until a condition holds."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from conveyor.worker.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Run a worker in this event loop for the duration of the block, then shut it down gracefully.

    The block starts once the worker has announced itself (its first heartbeat), so it counts as live.
    """
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(lambda: _announced(worker, task))
        yield worker
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)


async def _announced(worker: Worker, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # a worker that failed to start fails the test with its own error
        raise AssertionError("the worker stopped before it announced itself")
    return any(info.id == worker.id for info in await worker.registry.list())


async def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll an (async) predicate until it is truthy and return its value, or fail the test."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def fill_up(client: Any, headroom_bytes: int = 0) -> None:
    """Make a Redis server refuse writes (OOM) once it uses `headroom_bytes` more than now: its `maxmemory`
    just above its use, policy `noeviction`. `client.config_set("maxmemory", "0")` lifts it."""
    await client.config_set("maxmemory-policy", "noeviction")
    used = int((await client.info("memory"))["used_memory"])
    await client.config_set("maxmemory", str(used + headroom_bytes) if headroom_bytes else "1")


async def blocked_clients(client: Any, at_least: int = 1) -> bool:
    """True once `at_least` connections wait in a blocking command (an idle worker's fetcher waits in BZPOPMIN).

    For tests that need a worker idle and blocked on Redis before they act: poll this rather than sleep.
    """
    info = await client.info("clients")
    return int(info["blocked_clients"]) >= at_least


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def aof_synced(persistence: dict[str, Any]) -> bool:
    """True once Redis has written every command to its AOF and no fsync is pending (from INFO persistence).

    With `appendfsync everysec` that takes about a second, longer on a busy machine: poll this before a crash
    that must not lose what was written, rather than sleeping a second.
    """
    return int(persistence["aof_buffer_length"]) == 0 and int(persistence["aof_pending_bio_fsync"]) == 0


def assert_latency(samples_ms: Sequence[float], *, promised_ms: float, worst_ms: float = 1000, what: str) -> None:
    """Check a latency the README promises so that a busy machine cannot fail it by chance but a broken mechanism
    does: the median sample within `promised_ms`, and every sample within `worst_ms` (a wake-up that never came
    costs a poll period or a timeout, seconds). The samples are in the failure message."""
    shown = ", ".join(f"{sample:.1f}" for sample in samples_ms)
    assert samples_ms, f"{what}: no samples"
    assert statistics.median(samples_ms) < promised_ms, f"{what}: median over {promised_ms} ms (samples: {shown} ms)"
    assert max(samples_ms) < worst_ms, f"{what}: a sample over {worst_ms} ms (samples: {shown} ms)"
    assert min(samples_ms) >= 0, f"{what}: a negative sample (samples: {shown} ms)"


def stop_processes(procs: list[subprocess.Popen[Any]], within_s: float = 15) -> None:
    """SIGTERM every process still running, wait for each, and kill those that do not stop in time."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(within_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ProcessGroup:
    """Subprocesses of `python -m MODULE ARGS` against one Redis, all stopped after the test (`stop_all`).

    Each test package subclasses it with a `start` that knows its worker module's arguments.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, module: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """Start `python -m module args` with REDIS_URL, a 2 s shutdown grace (unless `env` says otherwise) and
        the repository on the import path."""
        environment = {
            **os.environ, "REDIS_URL": self.redis_url, "CONVEYOR_SHUTDOWN_GRACE_S": "2", "PYTHONPATH": str(ROOT),
            **env,
        }  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", module, *args], env=environment, cwd=ROOT)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM every process, then kill the ones that do not stop within 15 s."""
        stop_processes(self.procs, 15)
