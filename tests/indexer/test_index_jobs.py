"""The indexer's jobs through a real worker: full-index fans out and tracks progress, index-file, remove-file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conveyor import Conveyor, JobState
from conveyor.indexer import CodeIndex, start_full_index
from conveyor.indexer.fanout import DONE, FAILED, LOST, FanoutTracker, fanout_key, reconcile
from tests.indexer.helpers import running, wait_until, write_many

SAMPLE_FILES = 8  # indexable files of the sample repository


async def _progress_events(app: Conveyor, job_id: str) -> list[dict[str, Any]]:
    """Every progress value the job reported, in order, from the queue's event stream."""
    entries = await app.client.xrange(app.queue("indexing").keys.events)
    return [
        json.loads(fields["data"])
        for _, fields in entries
        if fields.get("event") == "progress" and fields.get("jobId") == job_id
    ]


async def _run_full_index(app: Conveyor, repo: Path, **options: Any) -> Any:
    queue = app.queue("indexing")
    async with running(app.worker(["indexing"])):
        job_id = await start_full_index(app, repo, **options)
        await wait_until(lambda: _finished(app, job_id), timeout=90)
    return await queue.get_job(job_id)


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("indexing").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


async def test_full_index_of_hundreds_of_files_completes_with_correct_progress(
    app: Conveyor, repo: Path, index_path: Path
) -> None:
    write_many(repo, 300)
    total = 300 + SAMPLE_FILES
    job = await _run_full_index(app, repo)
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.result["total"] == total
    assert (job.result["done"], job.result["failed"], job.result["percent"]) == (total, 0, 100)
    assert job.progress["percent"] == 100

    events = await _progress_events(app, job.id)
    assert events[0]["done"] == 0
    assert events[0]["total"] == total
    assert events[-1] == job.progress
    done_counts = [event["done"] for event in events]
    assert done_counts == sorted(done_counts)  # progress only moves forward
    assert len(set(done_counts)) > 2  # and was reported along the way, not only at the start and end

    index = CodeIndex(index_path)
    assert index.stats().files == total
    assert index.search("renderPanel13")[0].symbol == "renderPanel13"
    assert index.search("decode_frame_298")[0].file.endswith("file_298.rs")
    index.close()


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


async def test_full_index_of_a_missing_folder_fails_saying_why(app: Conveyor, tmp_path: Path) -> None:
    job = await _run_full_index(app, tmp_path / "nowhere")
    assert job.state is JobState.FAILED
    assert "not a directory" in (job.failed_reason or "")


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


async def test_a_child_that_fails_for_good_records_it_for_its_parent(app: Conveyor, repo: Path) -> None:
    bad_index = "/dev/null/cannot-exist.sqlite"
    data = {"path": str(repo / "README.md"), "index": bad_index, "parent": "p1"}
    async with running(app.worker(["indexing"])):
        child = await app.add("indexing", "index-file", data, attempts=1, job_id="p1-child")
        await wait_until(lambda: _finished(app, child))
    tracker = FanoutTracker(app.client, fanout_key(app.settings.conveyor_prefix, "indexing", "p1"))
    assert await tracker.outcomes() == {"p1-child": FAILED}


async def test_children_that_vanish_or_fail_without_reporting_are_found_by_reconciling(app: Conveyor) -> None:
    queue = app.queue("indexing")
    tracker = FanoutTracker(app.client, fanout_key(app.settings.conveyor_prefix, "indexing", "p2"))
    await app.add("indexing", "index-file", {"path": "/x"}, job_id="p2-gone")
    await queue.remove("p2-gone")
    await app.add("indexing", "index-file", {"path": "/y"}, job_id="p2-waiting")
    await tracker.record("p2-done", DONE)
    recorded = await reconcile(queue, tracker, ["p2-gone", "p2-waiting", "p2-done"])
    assert recorded == 1
    assert await tracker.outcomes() == {"p2-gone": LOST, "p2-done": DONE}
