"""A stop signal (SIGTERM: a deploy, a scale-down) loses no job and runs none twice at once.

Worker subprocesses of `tests/worker/sample_app.py` note each run of a job's handler in a ledger file outside
Redis. Async handlers still running at the end of the grace period are cancelled and handed back; a sync
handler's thread cannot be stopped, so the worker waits for it instead of letting another worker run the same
job beside it. A second signal stops that wait: the job is left to the stalled-job check, and the process
exits, which ends the thread.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

from conveyor import Conveyor, JobOptions, NewJob
from tests.faults.ledger import (
    LOCK_MS,
    QUEUE,
    RECOVERY_S,
    Ledger,
    all_finished,
    assert_invariants,
    fetchers_waiting,
    start_worker,
)
from tests.support import wait_until
from tests.worker.conftest import WorkerProcesses

GRACE_S = 2.0  # the workers' shutdown grace (ProcessGroup's default)


async def _exit_code(proc: subprocess.Popen[bytes], timeout_s: float) -> int:
    return await asyncio.to_thread(proc.wait, timeout_s)


async def _workers_live(app: Conveyor, count: int) -> bool:
    return len(await app.workers()) == count


async def _add_blocking(app: Conveyor, count: int, seconds: float, rerun_seconds: float = 0.05) -> list[str]:
    jobs = [NewJob("ledger-block", {"seconds": seconds, "rerun_seconds": rerun_seconds}, JobOptions(attempts=3))]
    return await app.add_bulk(QUEUE, jobs * count)


async def test_sigterm_under_load_drains_the_worker_and_loses_or_repeats_no_job(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    victim = start_worker(workers, ledger, concurrency=10)
    start_worker(workers, ledger, concurrency=10)
    await wait_until(lambda: fetchers_waiting(app, 2))
    jobs = [NewJob("ledger", {"seconds": 0.05}, JobOptions(attempts=5)) for _ in range(1000)]
    added = {job_id: time.time() for job_id in await app.add_bulk(QUEUE, jobs)}
    await wait_until(lambda: len(ledger.runs()) >= 200)
    victim.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert await _exit_code(victim, GRACE_S + 15) == 0
    assert time.monotonic() - stopped < GRACE_S + 5  # its jobs (50 ms each) end well within the grace
    histogram = await assert_invariants(app, ledger, added)
    assert histogram == {1: len(added)}  # every running job finished within the grace: none ran twice


async def test_a_sync_handler_running_past_the_grace_finishes_on_its_worker_and_runs_nowhere_else(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    victim = start_worker(workers, ledger, concurrency=2)
    await wait_until(lambda: fetchers_waiting(app, 1))
    ids = await _add_blocking(app, 2, seconds=GRACE_S + 6)
    await wait_until(lambda: len(ledger.runs()) == 2)
    start_worker(workers, ledger, concurrency=2)  # free to take any job handed back
    await wait_until(lambda: _workers_live(app, 2))
    victim.send_signal(signal.SIGTERM)
    assert await _exit_code(victim, GRACE_S + 20) == 0
    await wait_until(lambda: all_finished(app, len(ids)))
    runs = ledger.runs()
    assert [len(runs[job_id]) for job_id in ids] == [1, 1]
    assert {pid for job_id in ids for pid, _ in runs[job_id]} == {victim.pid}
    queue = app.queue(QUEUE)
    assert [(await queue.get_job(job_id)).attempts_made for job_id in ids] == [1, 1]


async def test_a_second_sigterm_stops_at_once_and_leaves_a_stuck_sync_handler_to_the_stalled_check(
    app: Conveyor, workers: WorkerProcesses, ledger: Ledger
) -> None:
    victim = start_worker(workers, ledger, concurrency=1)
    await wait_until(lambda: fetchers_waiting(app, 1))
    (job_id,) = await _add_blocking(app, 1, seconds=600)
    await wait_until(lambda: len(ledger.runs()) == 1)
    start_worker(workers, ledger, concurrency=1)
    await wait_until(lambda: _workers_live(app, 2))
    victim.send_signal(signal.SIGTERM)
    await asyncio.sleep(GRACE_S + 1)  # past the grace: waiting for the thread
    assert victim.poll() is None
    victim.send_signal(signal.SIGTERM)
    assert await _exit_code(victim, 10) == 0
    exited_at = time.time()
    await wait_until(lambda: all_finished(app, 1), timeout=RECOVERY_S + 10)
    (first, second) = ledger.runs()[job_id]
    assert first[0] == victim.pid
    assert second[0] != victim.pid
    assert second[1] >= exited_at - 0.5  # not before the stuck thread was gone with its process
    assert second[1] - exited_at < RECOVERY_S  # its lock lapsed, and the stalled check requeued it
    assert second[1] - first[1] > LOCK_MS / 1000  # never beside the first run
