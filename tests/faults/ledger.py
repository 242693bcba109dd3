"""The ledger fault tests keep outside Redis, and the worker subprocesses that write it.

Worker subprocesses of `tests/worker/sample_app.py` note each run of a job's handler in a ledger file (one line
`<job id> <pid> <unix time>` per run), so the counts of lost and repeated jobs do not rest on what Redis says.
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from conveyor import Conveyor, JobOptions, JobState, NewJob
from tests.support import blocked_clients, wait_until
from tests.worker.conftest import WorkerProcesses

QUEUE = "background"
LOCK_MS = 2000
STALLED_INTERVAL_MS = 500
# Longest a job that lost its worker waits: the lock lapses, then the stalled check marks it and requeues it on
# its next round (two intervals); plus slack for a busy machine.
RECOVERY_S = (LOCK_MS + 2 * STALLED_INTERVAL_MS) / 1000 + 3.0
MAX_RUNS = 2  # the documented bound on runs of one job under one freeze or crash of its worker


@dataclass
class Ledger:
    """The ledger file the `ledger` handler appends to: one `<job id> <pid> <unix time>` line per run."""

    path: Path

    def runs(self) -> dict[str, list[tuple[int, float]]]:
        runs: dict[str, list[tuple[int, float]]] = defaultdict(list)
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                job_id, pid, at = line.split()
                runs[job_id].append((int(pid), float(at)))
        return runs


def start_worker(workers: WorkerProcesses, ledger: Ledger, concurrency: int) -> subprocess.Popen[bytes]:
    return workers.start(
        QUEUE,
        concurrency=concurrency,
        TEST_LEDGER=str(ledger.path),
        CONVEYOR_LOCK_DURATION_MS=str(LOCK_MS),
        CONVEYOR_STALLED_INTERVAL_MS=str(STALLED_INTERVAL_MS),
    )


async def fetchers_waiting(app: Conveyor, count: int) -> bool:
    return await blocked_clients(app.client, at_least=count)


async def add_jobs(app: Conveyor, count: int, seconds: float) -> dict[str, float]:
    """Add `count` ledger jobs (5 attempts each); returns each id with the time it was added."""
    added: dict[str, float] = {}
    jobs = [NewJob("ledger", {"seconds": seconds}, JobOptions(attempts=5)) for _ in range(count)]
    at = time.time()
    for job_id in await app.add_bulk(QUEUE, jobs):
        added[job_id] = at
    return added


async def all_finished(app: Conveyor, count: int) -> bool:
    counts = await app.queue(QUEUE).counts()
    return counts.completed + counts.failed >= count


async def assert_invariants(
    app: Conveyor, ledger: Ledger, added: dict[str, float], failing: frozenset[str] = frozenset()
) -> dict[str, int]:
    """0 lost, none failed (in particular none for stalling too often) but the `failing` ones the test made to
    fail, at most MAX_RUNS runs of one job of `added`. Returns how many jobs ran how many times."""
    await wait_until(lambda: all_finished(app, len(added) + len(failing)), timeout=RECOVERY_S + 20)
    queue = app.queue(QUEUE)
    failed = [
        await queue.get_job(job_id)
        for job_id in await queue.job_ids(JobState.FAILED, count=1000)
        if job_id not in failing
    ]
    assert not failed, [(job.id, job.failed_reason) for job in failed]
    runs = ledger.runs()
    never_ran = [job_id for job_id in added if not runs.get(job_id)]
    assert not never_ran, f"completed without a run in the ledger: {never_ran}"
    histogram: dict[int, int] = defaultdict(int)
    for job_id in added:
        histogram[len(runs[job_id])] += 1
    assert max(histogram) <= MAX_RUNS, dict(histogram)
    print(f"ledger: {len(added)} jobs, runs per job {dict(histogram)}")  # shown with -rP: the README's figures
    return dict(histogram)
