"""AI jobs through a worker with the offline provider: a batch of summaries, results queryable per file."""

from __future__ import annotations

from pathlib import Path

from conveyor import JobState, Queue
from conveyor.ai import ResultStore, batch
from conveyor.indexer import CodeIndex
from tests.ai.conftest import MakeApp
from tests.indexer.helpers import running, wait_until, write_many, write_sample_repo


async def test_a_batch_of_summaries_completes_and_each_file_has_its_result(
    make_app: MakeApp, tmp_path: Path, index_path: Path
) -> None:
    app = await make_app("offline")
    files = write_many(tmp_path / "repo", 60)
    queue = app.queue("ai-processing")
    async with running(app.worker(["ai-processing"])):
        ids = await app.add_bulk("ai-processing", batch(files, "generate-summary"))

        async def all_done() -> bool:
            states = [await queue.state_of(job_id) for job_id in ids]
            return all(state is JobState.COMPLETED for state in states)

        await wait_until(all_done, timeout=60)
    store = ResultStore(CodeIndex(index_path))
    for path in files:
        stored = store.for_file(path)
        assert [s.result.task for s in stored] == ["generate-summary"]
        assert stored[0].result.provider == "offline"
        assert stored[0].result.details["symbols"]
    job = await queue.get_job(ids[0])
    assert job.result["text"] == store.latest(files[0], "generate-summary").result.text  # type: ignore[union-attr]


async def test_results_accumulate_per_task_and_the_newest_comes_first(
    make_app: MakeApp, tmp_path: Path, index_path: Path
) -> None:
    app = await make_app("offline")
    repo = write_sample_repo(tmp_path / "repo")
    path = repo / "billing" / "invoice.py"
    queue = app.queue("ai-processing")
    async with running(app.worker(["ai-processing"])):
        for task in ("explain", "refactor", "explain"):
            job_id = await app.add("ai-processing", task, {"path": str(path), "symbol": "format_currency"})
            await wait_until(lambda job_id=job_id: _completed(queue, job_id))
    store = ResultStore(CodeIndex(index_path))
    assert [s.result.task for s in store.for_file(path)] == ["explain", "refactor", "explain"]
    assert len(store.for_file(path, "explain")) == 2
    assert store.latest(path, "fix") is None
    assert store.latest(path, "explain").symbol == "format_currency"  # type: ignore[union-attr]


async def _completed(queue: Queue, job_id: str) -> bool:
    return await queue.state_of(job_id) is JobState.COMPLETED


async def test_a_missing_or_binary_file_fails_without_retries(make_app: MakeApp, tmp_path: Path) -> None:
    app = await make_app("offline")
    binary = tmp_path / "image.py"
    binary.write_bytes(b"\0\1\2")
    queue = app.queue("ai-processing")
    async with running(app.worker(["ai-processing"])):
        missing = await app.add("ai-processing", "explain", {"path": str(tmp_path / "nope.py")}, attempts=3)
        binary_id = await app.add("ai-processing", "fix", {"path": str(binary)}, attempts=3)
        for job_id in (missing, binary_id):
            await wait_until(lambda job_id=job_id: _failed(queue, job_id))
    missing_job, binary_job = await queue.get_job(missing), await queue.get_job(binary_id)
    assert missing_job.attempts_made == binary_job.attempts_made == 1
    assert "Cannot read" in (missing_job.failed_reason or "")
    assert "binary" in (binary_job.failed_reason or "")


async def _failed(queue: Queue, job_id: str) -> bool:
    return await queue.state_of(job_id) is JobState.FAILED
