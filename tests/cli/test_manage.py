"""Managing queues and jobs from the command line: pause, resume, clear, cancel, promote, remove, retry."""

from __future__ import annotations

import json
from pathlib import Path

from conveyor import Conveyor, JobOptions, JobState, NewJob
from conveyor.queue.queue import Queue
from tests.cli.conftest import Cli, wait_until


async def test_pause_and_resume_flip_the_paused_flag(conveyor_cli: Cli, app: Conveyor) -> None:
    paused = await conveyor_cli.ainvoke("pause", "indexing")
    assert paused.exit_code == 0, paused.output
    assert await app.queue("indexing").is_paused()
    stats = await conveyor_cli.ainvoke("stats", "--json")
    assert json.loads(stats.stdout)["queues"]["indexing"]["paused"] is True
    resumed = await conveyor_cli.ainvoke("resume", "indexing")
    assert resumed.exit_code == 0, resumed.output
    assert not await app.queue("indexing").is_paused()


async def test_clear_without_yes_is_refused_when_no_one_can_confirm(conveyor_cli: Cli, app: Conveyor) -> None:
    await app.add_bulk("background", [NewJob("echo"), NewJob("echo")])
    refused = await conveyor_cli.ainvoke("clear", "background")
    assert refused.exit_code == 2
    assert "--yes" in refused.stderr
    assert (await app.queue("background").counts()).pending == 2


async def test_clear_with_yes_deletes_every_job(conveyor_cli: Cli, app: Conveyor) -> None:
    await app.add_bulk("background", [NewJob("echo"), NewJob("echo", options=JobOptions(delay_ms=60_000))])
    cleared = await conveyor_cli.ainvoke("clear", "background", "--yes")
    assert cleared.exit_code == 0, cleared.output
    counts = await app.queue("background").counts()
    assert (counts.pending, counts.active, counts.completed, counts.failed) == (0, 0, 0, 0)


async def test_cancel_removes_a_pending_job(conveyor_cli: Cli, app: Conveyor) -> None:
    job_id = await app.add("background", "echo")
    cancelled = await conveyor_cli.ainvoke("cancel", "background", job_id)
    assert cancelled.exit_code == 0, cancelled.output
    assert await app.queue("background").state_of(job_id) is JobState.UNKNOWN
    assert (await conveyor_cli.ainvoke("cancel", "background", job_id)).exit_code == 1


async def test_promote_moves_a_delayed_job_to_the_pending_jobs(conveyor_cli: Cli, app: Conveyor) -> None:
    job_id = await app.add("background", "echo", delay_ms=3_600_000)
    promoted = await conveyor_cli.ainvoke("promote", "background", job_id)
    assert promoted.exit_code == 0, promoted.output
    assert await app.queue("background").state_of(job_id) in (JobState.WAITING, JobState.PRIORITIZED)
    again = await conveyor_cli.ainvoke("promote", "background", job_id)
    assert again.exit_code == 1
    assert "not delayed" in again.stderr


async def test_remove_deletes_a_job_and_a_missing_one_is_not_found(conveyor_cli: Cli, app: Conveyor) -> None:
    job_id = await app.add("background", "echo")
    assert (await conveyor_cli.ainvoke("remove", "background", job_id)).exit_code == 0
    assert await app.queue("background").state_of(job_id) is JobState.UNKNOWN
    missing = await conveyor_cli.ainvoke("remove", "background", job_id)
    assert missing.exit_code == 1
    assert f"No job {job_id!r}" in missing.stderr


async def test_retry_refuses_a_job_that_has_not_failed(conveyor_cli: Cli, app: Conveyor) -> None:
    job_id = await app.add("background", "echo")
    refused = await conveyor_cli.ainvoke("retry", "background", job_id)
    assert refused.exit_code == 1
    assert "not failed" in refused.stderr


def test_retry_needs_exactly_one_of_an_id_or_all_failed(conveyor_cli: Cli) -> None:
    assert conveyor_cli.invoke("retry", "background").exit_code == 2
    assert conveyor_cli.invoke("retry", "background", "7", "--all-failed").exit_code == 2


def test_operations_on_a_missing_job_exit_1(conveyor_cli: Cli) -> None:
    for command in ("job", "retry", "cancel", "promote", "remove"):
        result = conveyor_cli.invoke(command, "background", "no-such-job")
        assert result.exit_code == 1, (command, result.output)
        assert "No job 'no-such-job' in queue 'background'" in result.stderr, command


async def test_job_after_retry_labels_the_runs_attempt_1_and_attempt_2(
    conveyor_cli: Cli, app: Conveyor, tmp_path: Path
) -> None:
    queue = app.queue("background")
    job_id = await app.add("background", "fail-unless-file", {"path": str(tmp_path / "missing")})
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _state_is(queue, job_id, JobState.FAILED), timeout=30)
    retried = await conveyor_cli.arun("retry", "background", job_id)
    assert retried.returncode == 0, retried.stderr
    await wait_until(lambda: _state_is(queue, job_id, JobState.FAILED), timeout=30)

    shown = await conveyor_cli.arun("job", "background", job_id, "--json")
    assert [run["attempt"] for run in json.loads(shown.stdout)["history"]] == [1, 2]
    text = (await conveyor_cli.arun("job", "background", job_id)).stdout
    assert "Attempt 1 failed" in text
    assert "Attempt 2 failed" in text


async def _state_is(queue: Queue, job_id: str, state: JobState) -> bool:
    return await queue.state_of(job_id) is state
