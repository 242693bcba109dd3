"""The live worker list shows every worker with its facts; dead workers drop out by themselves."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from conveyor import Conveyor
from tests.worker.conftest import WorkerProcesses, running, wait_until


async def test_running_worker_is_listed_with_host_pid_queues_and_concurrency(app: Conveyor) -> None:
    async with running(app.worker(["background", "indexing"], {"background": 3})) as worker:
        await wait_until(lambda: _count(app, 1))
        (info,) = await app.workers()
        assert info.id == worker.id
        assert info.host == socket.gethostname()
        assert info.pid == os.getpid()
        assert info.queues == {"background": 3, "indexing": 5}
        assert info.active == {"background": 0, "indexing": 0}
        assert info.last_beat >= info.started_at
    assert await app.workers() == []


async def test_killed_worker_disappears_from_the_list(app: Conveyor, worker_processes: WorkerProcesses) -> None:
    proc = worker_processes.start("background")
    await wait_until(lambda: _count(app, 1), timeout=30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    await wait_until(lambda: _count(app, 0, exact=True), timeout=10, interval=0.25)


async def _count(app: Conveyor, n: int, *, exact: bool = False) -> bool:
    live = len(await app.workers())
    return live == n if exact else live >= n


async def test_a_worker_says_it_serves_only_once_its_heartbeat_is_written(app: Conveyor) -> None:
    worker = app.worker(["background"])
    await app.client.execute_command("CLIENT", "PAUSE", 1500, "WRITE")  # the heartbeat (a write) waits
    run = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.8)
        assert not worker.serving.is_set()  # its first heartbeat is still held back by the pause
        await asyncio.wait_for(worker.serving.wait(), timeout=10)
        assert [info.id for info in await app.workers(node=False)] == [worker.id]
    finally:
        worker.request_stop()
        await run
