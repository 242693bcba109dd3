"""Worker memory stays bounded under load."""

from __future__ import annotations

from pathlib import Path

from conveyor import Conveyor, NewJob
from tests.worker.conftest import WorkerProcesses, wait_until


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_worker_rss_stays_bounded_over_10000_jobs(app: Conveyor, worker_processes: WorkerProcesses) -> None:
    proc = worker_processes.start("background", concurrency=20)
    await wait_until(lambda: _live(app), timeout=30)
    queue = app.queue("background")
    samples: list[float] = []
    for batch in range(5):
        await app.add_bulk("background", [NewJob("record", {"batch": batch, "pad": "x" * 200})] * 2000)
        await wait_until(lambda b=batch: _completed(app, 2000 * (b + 1)), timeout=120, interval=0.2)
        samples.append(rss_mib(proc.pid))
    counts = await queue.counts()
    assert counts.completed == 10_000
    assert counts.failed == 0
    assert max(samples) < 120, samples
    assert samples[-1] - samples[0] < 8, samples  # warm after the first 2,000; no growth per job after that


async def _live(app: Conveyor) -> bool:
    return bool(await app.workers())


async def _completed(app: Conveyor, n: int) -> bool:
    return (await app.queue("background").counts()).completed >= n
