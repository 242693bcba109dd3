"""Watch mode: saves become debounced index-file jobs, one per burst, and the last save is what gets indexed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conveyor import Conveyor, JobState, load_settings
from conveyor.indexer import CodeIndex
from conveyor.indexer.watch import ChangeWatcher, TrailingDebounce, enqueue_change, watch_job_id
from tests.indexer.helpers import running, wait_until


async def _completed_events(app: Conveyor, job_id: str) -> int:
    entries = await app.client.xrange(app.queue("indexing").keys.events)
    return sum(1 for _, f in entries if f.get("event") == "completed" and f.get("jobId") == job_id)


async def _completed_events_are(app: Conveyor, job_id: str, n: int) -> bool:
    return await _completed_events(app, job_id) == n


def _indexed(index_path: Path, symbol: str) -> bool:
    index = CodeIndex(index_path)
    try:
        return any(hit.symbol and hit.symbol.split(".")[-1] == symbol for hit in index.search(symbol, limit=3))
    finally:
        index.close()


async def test_a_burst_of_20_saves_becomes_one_job_that_indexes_the_last_save(
    app: Conveyor, repo: Path, index_path: Path
) -> None:
    path = repo / "billing" / "invoice.py"
    queue = app.queue("indexing")
    for n in range(20):
        path.write_text(f"def version_{n}():\n    pass\n")
        assert await enqueue_change(app, path, index=index_path, debounce_ms=300)
    counts = await queue.counts()
    assert (counts.delayed, counts.waiting, counts.active) == (1, 0, 0)

    job_id = watch_job_id(index_path, path)
    async with running(app.worker(["indexing"])):
        await wait_until(lambda: _indexed(index_path, "version_19"))
        await wait_until(lambda: queue.state_of(job_id), timeout=5)  # gone once completed
        await wait_until(lambda: _completed_events(app, job_id))
    assert await queue.state_of(job_id) is JobState.UNKNOWN  # removed on completion, ready for the next save
    assert await _completed_events(app, job_id) == 1
    assert not _indexed(index_path, "version_0")


async def test_a_save_after_the_job_ran_gets_a_new_job(app: Conveyor, repo: Path, index_path: Path) -> None:
    path = repo / "web" / "events.js"
    job_id = watch_job_id(index_path, path)
    async with running(app.worker(["indexing"])):
        path.write_text("function firstSave() {}\n")
        await enqueue_change(app, path, index=index_path, debounce_ms=50)
        await wait_until(lambda: _indexed(index_path, "firstSave"))
        path.write_text("function secondSave() {}\n")
        # The symbol shows in the index just before the first job's completion is stored: until then the job is
        # still active and the change is refused (False), so call again, as the watcher does on its next tick.
        await wait_until(lambda: enqueue_change(app, path, index=index_path, debounce_ms=50))
        await wait_until(lambda: _indexed(index_path, "secondSave"))
        # The first job may have indexed the second save itself (it indexes again when the file changed while it
        # read it): the new job runs all the same, after its debounce.
        await wait_until(lambda: _completed_events_are(app, job_id, 2))
    assert await _completed_events(app, job_id) == 2


async def test_deleting_a_watched_file_takes_it_out_of_the_index(app: Conveyor, repo: Path, index_path: Path) -> None:
    path = repo / "store" / "kv.go"
    async with running(app.worker(["indexing"])):
        await enqueue_change(app, path, index=index_path, debounce_ms=0)
        await wait_until(lambda: _indexed(index_path, "LookupKey"))
        path.unlink()
        await wait_until(lambda: enqueue_change(app, path, index=index_path, debounce_ms=0))  # see above
        await wait_until(lambda: not _indexed(index_path, "LookupKey"))


async def test_watcher_turns_a_burst_of_real_saves_into_one_job(app: Conveyor, repo: Path, index_path: Path) -> None:
    """Saves 100 ms apart for over a second, with a worker running and a 600 ms debounce: a window from the
    first save would index the file again and again; debouncing from the last save indexes it once."""
    path = repo / "dsp" / "ring.rs"
    changed: list[Path] = []
    watcher = ChangeWatcher(app, repo, index=index_path, debounce_ms=600, on_change=changed.append)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        async with running(app.worker(["indexing"])):
            saves, seen_at = 0, None
            # The watcher starts in the background: save until it has seen a save, then twelve more.
            while seen_at is None or saves < seen_at + 12:
                path.write_text(f"pub fn burst_{saves}() {{}}\n")
                (repo / "debug.log").write_text(f"ignored {saves}\n")  # ignored by .gitignore: never enqueued
                saves += 1
                await asyncio.sleep(0.1)
                if seen_at is None and watcher.debounce.pending:
                    seen_at = saves
                assert saves < 300, "the watcher never saw a save"
            assert not changed  # still saving: nothing enqueued yet
            await wait_until(lambda: _indexed(index_path, f"burst_{saves - 1}"))
            await wait_until(lambda: _completed_events(app, watch_job_id(index_path, path)))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [p.name for p in changed] == ["ring.rs"]
    assert await _completed_events(app, watch_job_id(index_path, path)) == 1
    entries = await app.client.xrange(app.queue("indexing").keys.events)
    added = [fields for _, fields in entries if fields.get("event") in ("added", "delayed")]
    index_jobs = {fields.get("jobId") for fields in added if fields.get("name") != "embed"}  # embeds follow indexing
    assert index_jobs == {watch_job_id(index_path, path)}


def test_debounce_waits_for_the_last_save() -> None:
    clock = [0.0]
    debounce = TrailingDebounce(500, now=lambda: clock[0])
    path = Path("/repo/a.py")
    released = []
    for _ in range(20):  # 20 saves over 4 s
        debounce.saw({path})
        clock[0] += 0.2
        released += debounce.due()
    assert released == []
    clock[0] += 0.31  # 0.5 s after the last save
    assert debounce.due() == [path]
    assert debounce.pending == 0


async def test_a_symlink_loop_appearing_does_not_stop_the_watcher(app: Conveyor, repo: Path, index_path: Path) -> None:
    changed: list[Path] = []
    watcher = ChangeWatcher(app, repo, index=index_path, debounce_ms=50, on_change=changed.append)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        async with running(app.worker(["indexing"])):
            probe = repo / "web" / "probe.js"
            for n in range(300):  # the watcher starts in the background: save until it has seen a save
                probe.write_text(f"function probe{n}() {{}}\n")
                await asyncio.sleep(0.05)
                if changed:
                    break
            (repo / "loop_a").symlink_to(repo / "loop_b")
            (repo / "loop_b").symlink_to(repo / "loop_a")
            (repo / "web" / "loop").symlink_to(repo / "web")  # a folder that contains itself
            await asyncio.sleep(0.3)
            (repo / "web" / "late.js").write_text("function afterTheLoop() {}\n")
            await wait_until(lambda: _indexed(index_path, "afterTheLoop"))
            assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_a_save_while_an_earlier_job_runs_is_refused_until_that_job_ends(
    redis_url: str, repo: Path, index_path: Path
) -> None:
    holder = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    release = asyncio.Event()

    @holder.handler("indexing", "index-file")
    async def hold(_: Any) -> None:
        await release.wait()

    await holder.connect()
    path = repo / "store" / "kv.go"
    queue = holder.queue("indexing")
    job_id = watch_job_id(index_path, path)
    try:
        async with running(holder.worker(["indexing"])):
            assert await enqueue_change(holder, path, index=index_path, debounce_ms=0)  # its own job: accepted
            await wait_until(lambda: queue.state_of(job_id), timeout=5)
            await wait_until(lambda: _is_active(holder, job_id))
            assert not await enqueue_change(holder, path, index=index_path, debounce_ms=0)  # may have read it
            release.set()
            await wait_until(lambda: enqueue_change(holder, path, index=index_path, debounce_ms=0))
    finally:
        await holder.close()


async def _is_active(app: Conveyor, job_id: str) -> bool:
    return await app.queue("indexing").state_of(job_id) is JobState.ACTIVE
