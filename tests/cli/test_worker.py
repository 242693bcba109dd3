"""`conveyor worker`: processes jobs, stops gracefully on SIGTERM, and runs N supervised processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conveyor import Conveyor, JobState, NewJob
from tests.cli.conftest import Cli, wait_until


async def _live_workers(app: Conveyor, count: int) -> bool:
    return len(await app.workers()) == count


async def _in_state(app: Conveyor, queue: str, job_id: str, state: JobState) -> bool:
    return await app.queue(queue).state_of(job_id) is state


async def _all_completed(app: Conveyor, ids: list[str]) -> bool:
    states = [await app.queue("background").state_of(job_id) for job_id in ids]
    return all(state is JobState.COMPLETED for state in states)


async def _exit_code(proc: subprocess.Popen[str], timeout: float = 30) -> int:
    return await asyncio.to_thread(proc.wait, timeout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_worker_processes_jobs_and_exits_0_on_sigterm_without_losing_a_job(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    proc = conveyor_cli.start("worker", "--queues", "background", "--concurrency", "background=6")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    queue = app.queue("background")
    await app.add_bulk("background", [NewJob("sleep", {"seconds": 0.1}) for _ in range(4)])
    # Still running at SIGTERM: an async handler (cancelled and handed back) and a sync one, whose thread
    # cannot be stopped: the worker waits for it rather than let the job run in two places at once.
    sleeping, blocking = await app.add_bulk(
        "background", [NewJob("sleep", {"seconds": 600}), NewJob("block", {"seconds": 4})]
    )
    await wait_until(lambda: _counts_are(app, completed=4, active=2), timeout=30)

    proc.send_signal(signal.SIGTERM)
    assert await _exit_code(proc) == 0, conveyor_cli.output(proc)
    counts = await queue.counts()
    assert (counts.completed, counts.active, counts.failed, counts.pending) == (5, 0, 0, 1)
    assert (await queue.get_job(sleeping)).attempts_made == 0  # handed back, no attempt counted
    assert (await queue.get_job(blocking)).state is JobState.COMPLETED  # finished here, once
    assert "waiting for 1 sync handler(s)" in conveyor_cli.output(proc)
    assert await app.workers() == []
    assert "Redis: redis://:***@127.0.0.1" in conveyor_cli.output(proc)


async def _counts_are(app: Conveyor, *, completed: int, active: int) -> bool:
    counts = await app.queue("background").counts()
    return (counts.completed, counts.active) == (completed, active)


async def test_worker_processes_restart_a_killed_one_and_jobs_still_complete(conveyor_cli: Cli, app: Conveyor) -> None:
    supervisor = conveyor_cli.start("worker", "--processes", "3", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 3), timeout=60, interval=0.2)
    first = {worker.pid for worker in await app.workers()}
    assert len(first) == 3
    assert supervisor.pid not in first
    victim = min(first)
    os.kill(victim, signal.SIGKILL)

    async def replaced() -> bool:
        now = {worker.pid for worker in await app.workers()}
        return len(now) == 3 and victim not in now and len(now - first) == 1

    await wait_until(replaced, timeout=60, interval=0.2)
    assert "exited unexpectedly" in conveyor_cli.output(supervisor)

    ids = await app.add_bulk("background", [NewJob("echo", {"n": n}) for n in range(12)])
    await wait_until(lambda: _all_completed(app, ids), timeout=30)
    children = {worker.pid for worker in await app.workers()}
    supervisor.send_signal(signal.SIGTERM)
    assert await _exit_code(supervisor) == 0, conveyor_cli.output(supervisor)
    assert not any(_alive(pid) for pid in children)
    assert await app.workers() == []


async def test_clear_refuses_while_jobs_are_active_unless_forced(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    job_id = await app.add("background", "sleep", {"seconds": 600})
    await app.add("background", "echo", delay_ms=600_000)
    await wait_until(lambda: _in_state(app, "background", job_id, JobState.ACTIVE))

    refused = await conveyor_cli.ainvoke("clear", "background", "--yes")
    assert refused.exit_code == 1
    assert "1 active job(s)" in refused.stderr
    assert (await app.queue("background").counts()).delayed == 1

    forced = await conveyor_cli.ainvoke("clear", "background", "--yes", "--force")
    assert forced.exit_code == 0, forced.output
    counts = await app.queue("background").counts()
    assert (counts.pending, counts.active, counts.completed, counts.failed) == (0, 0, 0, 0)


async def test_retry_of_a_failed_job_runs_it_again(conveyor_cli: Cli, app: Conveyor, tmp_path: Path) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    marker = tmp_path / "ready"
    job_id = await app.add("background", "fail-unless-file", {"path": str(marker)})
    await wait_until(lambda: _in_state(app, "background", job_id, JobState.FAILED))

    shown = json.loads((await conveyor_cli.ainvoke("job", "background", job_id, "--json")).stdout)
    assert shown["state"] == "failed"
    assert "does not exist yet" in shown["failed_reason"]
    assert "RuntimeError" in shown["history"][0]["stacktrace"]

    marker.touch()
    retried = await conveyor_cli.ainvoke("retry", "background", job_id)
    assert retried.exit_code == 0, retried.output
    await wait_until(lambda: _in_state(app, "background", job_id, JobState.COMPLETED))
    assert (await app.queue("background").get_job(job_id)).result == "found"


async def test_retry_all_failed_retries_every_failed_job(conveyor_cli: Cli, app: Conveyor, tmp_path: Path) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    marker = tmp_path / "ready"
    ids = await app.add_bulk("background", [NewJob("fail-unless-file", {"path": str(marker)}) for _ in range(3)])
    await wait_until(lambda: _failed_count(app, 3))
    marker.touch()
    retried = await conveyor_cli.ainvoke("retry", "background", "--all-failed")
    assert retried.exit_code == 0, retried.output
    assert "Retried 3 failed job(s)" in retried.stdout
    await wait_until(lambda: _all_completed(app, ids))


async def _failed_count(app: Conveyor, count: int) -> bool:
    return (await app.queue("background").counts()).failed == count


async def test_cancel_of_an_active_job_stops_it_and_fails_it_as_cancelled(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    job_id = await app.add("background", "sleep", {"seconds": 600}, attempts=3)
    await wait_until(lambda: _in_state(app, "background", job_id, JobState.ACTIVE))
    started = time.monotonic()
    cancelled = await conveyor_cli.ainvoke("cancel", "background", job_id)
    assert cancelled.exit_code == 0, cancelled.output
    await wait_until(lambda: _in_state(app, "background", job_id, JobState.FAILED))
    job = await app.queue("background").get_job(job_id)
    assert "cancel" in (job.failed_reason or "").lower()
    assert job.attempts_made == 1  # cancelled jobs are not retried
    assert time.monotonic() - started < 600
