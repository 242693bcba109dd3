"""The indexer's jobs through a real worker: full-index fans out and tracks progress, index-file, remove-file."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conveyor import Conveyor, JobState, load_settings
from conveyor.indexer import CodeIndex, IndexerSettings, register, start_full_index
from conveyor.indexer.fullindex import FullIndexJobs, FullIndexStatus, follow_full_index
from conveyor.indexer.indexes import OpenIndexes
from conveyor.queue.flows import Flows
from tests.indexer.helpers import running, wait_until, write_many

SAMPLE_FILES = 8  # indexable files of the sample repository


async def _run_full_index(app: Conveyor, repo: Path, **options: Any) -> Any:
    """Run a full index to its end; returns the job holding its result (the summary, when it fanned out)."""
    async with running(app.worker(["indexing"])):
        job_id = await start_full_index(app, repo, **options)
        return await asyncio.wait_for(follow_full_index(app, "indexing", job_id, poll_s=0.05), 90)


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("indexing").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


async def test_full_index_of_hundreds_of_files_completes_with_correct_progress(
    app: Conveyor, repo: Path, index_path: Path
) -> None:
    write_many(repo, 300)
    total = 300 + SAMPLE_FILES
    seen: list[FullIndexStatus] = []
    async with running(app.worker(["indexing"])):
        job_id = await start_full_index(app, repo)
        job = await asyncio.wait_for(follow_full_index(app, "indexing", job_id, poll_s=0.02, report=seen.append), 90)
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.result["total"] == total
    assert (job.result["done"], job.result["failed"], job.result["percent"]) == (total, 0, 100)
    assert job.result["outcomes"] == {"binary": 2, "indexed": total}
    done_counts = [status.done for status in seen if status.total is not None]
    assert done_counts == sorted(done_counts)  # progress only moves forward
    assert done_counts[-1] == total

    index = CodeIndex(index_path)
    assert index.stats().files == total
    assert index.search("renderPanel13")[0].symbol == "renderPanel13"
    assert index.search("decode_frame_298")[0].file.endswith("file_298.rs")
    index.close()


async def test_full_index_holds_no_worker_slot_while_its_batches_run(
    redis_url: str, tmp_path: Path, repo: Path, index_path: Path
) -> None:
    """One slot on the queue: a parent that waited for its children in that slot would never finish."""
    settings = load_settings(
        redis_url=redis_url,
        conveyor_data_dir=tmp_path / "data",
        conveyor_shutdown_grace_s=2,
        indexing_queue_concurrency=1,
    )
    single = Conveyor(settings)
    register(single, IndexerSettings(conveyor_index_path=index_path))
    await single.connect()
    try:
        write_many(repo, 250)
        job = await _run_full_index(single, repo)
        assert job.state is JobState.COMPLETED, job.failed_reason
        assert job.id.endswith("-summary")
        assert job.result["indexed"] == 250 + SAMPLE_FILES
        children = await Flows.of(single).children("indexing", job.id)
        assert [child.status for child in children] == ["completed"] * 3  # batches of 100 files
    finally:
        await single.close()


async def test_second_full_index_enqueues_only_changes_and_drops_deleted_files(
    app: Conveyor, repo: Path, index_path: Path
) -> None:
    await _run_full_index(app, repo)
    (repo / "store" / "kv.go").unlink()
    (repo / "dsp" / "ring.rs").write_text("pub fn resample_signal() {}\n")
    job = await _run_full_index(app, repo)
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert (job.result["total"], job.result["done"], job.result["removed"]) == (1, 1, 1)
    assert job.result["unchanged"] == SAMPLE_FILES - 2
    index = CodeIndex(index_path)
    assert index.search("LookupKey") == []
    assert index.search("resample_signal")[0].symbol == "resample_signal"
    assert index.search("average_samples") == []
    index.close()


async def test_full_index_of_a_missing_folder_fails_at_once_saying_why(app: Conveyor, tmp_path: Path) -> None:
    job = await _run_full_index(app, tmp_path / "nowhere")
    assert job.state is JobState.FAILED
    assert "not a directory" in (job.failed_reason or "")
    assert job.attempts_made == 1  # not retried: the folder would not appear by trying again


async def test_index_file_accepts_the_designs_payload_and_remove_file_takes_it_out(
    app: Conveyor, repo: Path, index_path: Path
) -> None:
    queue = app.queue("indexing")
    path = repo / "web" / "dashboard.ts"
    async with running(app.worker(["indexing"])):
        added = await app.add("indexing", "index-file", {"filePath": str(path)}, priority="high")
        await wait_until(lambda: _finished(app, added))
        indexed = await queue.get_job(added)
        removed = await app.add("indexing", "remove-file", {"path": str(path)})
        await wait_until(lambda: _finished(app, removed))
    assert indexed.result["status"] == "indexed"
    assert indexed.result["symbols"] == 4
    assert (await queue.get_job(removed)).result == {"path": str(path), "removed": True}
    index = CodeIndex(index_path)
    assert index.search("renderWidget") == []
    index.close()


async def test_a_rerun_full_index_adds_its_flow_once(app: Conveyor, repo: Path) -> None:
    """A full-index job that runs again (its worker died after adding the flow) finds its flow, adds no other."""
    jobs = FullIndexJobs(app, OpenIndexes(app))
    ctx: Any = SimpleNamespace(job=SimpleNamespace(id="fi-1", queue="indexing"))
    first = await jobs.full_index(str(repo), None, False, ctx)
    counts = await app.queue("indexing").counts()
    again = await jobs.full_index(str(repo), None, False, ctx)
    assert again == first
    assert first["summaryJob"] == "fi-1-summary"
    assert (first["total"], first["batches"]) == (SAMPLE_FILES, 1)
    assert await app.queue("indexing").counts() == counts
