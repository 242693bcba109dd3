"""Index maintenance, removal of old finished jobs, and repeating tasks scheduled with delayed jobs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conveyor import Conveyor, JobState
from conveyor.indexer import CodeIndex
from conveyor.maintenance import SCHEDULED_TYPES, ensure_scheduled, remove_finished_jobs
from conveyor.maintenance.schedule import next_run_id
from conveyor.maintenance.settings import DAY_MS
from tests.indexer.helpers import running, wait_until, write_sample_repo


async def _run(app: Conveyor, job_type: str, data: dict[str, Any]) -> Any:
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", job_type, data)
        await wait_until(lambda: _finished(app, job_id))
    return await queue.get_job(job_id)


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("background").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


async def test_optimize_index_prunes_vanished_files_and_keeps_search_working(
    app: Conveyor, tmp_path: Path, index_path: Path
) -> None:
    repo = write_sample_repo(tmp_path / "repo")
    index = CodeIndex(index_path)
    for name in ("billing/invoice.py", "store/kv.go"):
        index.index_file(repo / name)
    (repo / "store" / "kv.go").unlink()
    job = await _run(app, "optimize-index", {"vacuum": True})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert (job.result["pruned"], job.result["files"]) == (1, 1)
    assert index.search("InvoiceCalculator")[0].symbol == "InvoiceCalculator"
    assert index.search("LookupKey") == []
    index.close()


async def test_old_finished_jobs_are_removed_and_recent_ones_kept(app: Conveyor) -> None:
    @app.handler("indexing", "noop")
    async def noop(payload: dict[str, Any]) -> str:
        return "ok"

    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        old_ids = [await app.add("indexing", "noop", {"n": n}) for n in range(5)]
        await wait_until(lambda: _all_completed(app, old_ids))
        await asyncio.sleep(0.05)  # the two batches finish at clearly different milliseconds
        new_ids = [await app.add("indexing", "noop", {"n": n}) for n in range(3)]
        await wait_until(lambda: _all_completed(app, new_ids))
    finished = {job.id: job.finished_at.timestamp() * 1000 for job in await queue.jobs(JobState.COMPLETED, 0, 50)}
    cutoff = (max(finished[i] for i in old_ids) + min(finished[i] for i in new_ids)) / 2
    now_ms = int(cutoff) + 60_000
    removed = await remove_finished_jobs(queue, JobState.COMPLETED, older_than_ms=now_ms - int(cutoff), now_ms=now_ms)
    assert removed == 5
    remaining = {job.id for job in await queue.jobs(JobState.COMPLETED, 0, 50)}
    assert remaining == set(new_ids)


async def _all_completed(app: Conveyor, ids: list[str]) -> bool:
    return all([await app.queue("indexing").state_of(i) is JobState.COMPLETED for i in ids])


async def test_remove_old_jobs_task_reports_per_queue_and_state(app: Conveyor) -> None:
    job = await _run(app, "remove-old-jobs", {"older_than_hours": 1, "queues": ["ai-processing"]})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.result["removed"] == {"ai-processing/completed": 0, "ai-processing/failed": 0}


async def test_a_repeating_task_schedules_its_next_run_a_day_later_exactly_once(
    app: Conveyor, cleanup_root: Path
) -> None:
    queue = app.queue("background")
    job = await _run(app, "cleanup-temp-files", {"pattern": "*.tmp", "every_ms": DAY_MS})
    assert job.state is JobState.COMPLETED, job.failed_reason
    following = await queue.get_job(next_run_id("cleanup-temp-files", job.id))
    assert following.state is JobState.DELAYED
    assert following.data["every_ms"] == DAY_MS
    assert following.delay_until is not None
    assert following.finished_at is None
    delay_s = following.delay_until.timestamp() - following.created_at.timestamp()  # type: ignore[union-attr]
    assert abs(delay_s - DAY_MS / 1000) < 1
    # a duplicate run of the same job adds nothing new
    await app.add("background", "cleanup-temp-files", job.data, job_id=next_run_id("cleanup-temp-files", job.id))
    assert (await queue.counts()).delayed == 1


async def test_ensure_scheduled_starts_each_task_once(app: Conveyor) -> None:
    added = await ensure_scheduled(app, DAY_MS)
    assert len(added) == len(SCHEDULED_TYPES)
    assert await ensure_scheduled(app, DAY_MS) == []
    delayed = await app.queue("background").jobs(JobState.DELAYED, 0, 10)
    assert sorted(job.type for job in delayed) == sorted(SCHEDULED_TYPES)
    assert all(job.data["every_ms"] == DAY_MS for job in delayed)
