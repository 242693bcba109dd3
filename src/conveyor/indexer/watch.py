"""Watch mode: re-index files as they change, a burst of saves to one file becoming one job.

Debouncing uses the queue itself, so it holds across watcher restarts and between several watchers of one
repository. Each file has a deterministic job id (`watch-<hash of index and path>`); a change adds an
`index-file` job with that id and a short delay. Adding an id that already exists is a no-op in BullMQ, so
every further save while the job is still delayed adds nothing: 20 saves within the delay are one job.
The job reads the file when it runs, so it indexes the latest save.

Two details keep the last save from being lost:

- Watch jobs are removed as soon as they complete (`keep_completed=0`), so the next save after a run creates
  a new job instead of hitting the finished one. A failed one is kept for inspection and replaced on the next
  save.
- A save while the job is *active* cannot be added (the id exists) and might come after the job read the
  file. The watcher sees the job is active and tries that file again on its next tick. The handler also
  re-reads a file whose mtime moved while it was being indexed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchfiles import Change, awatch

from conveyor.app import Conveyor
from conveyor.indexer.jobs import INDEX_FILE, QUEUE
from conveyor.indexer.walker import IgnoreRules, absolute
from conveyor.queue.job import JobState

log = logging.getLogger(__name__)

WATCHER_BATCH_MS = 50  # how long the file watcher gathers events before handing them over


def watch_job_id(index: Path, path: Path) -> str:
    """The job id of a watched file: one per (index, file), so saves of one file share it."""
    digest = hashlib.sha1(f"{index}\0{path}".encode(), usedforsecurity=False).hexdigest()[:24]
    return f"watch-{digest}"


async def enqueue_change(app: Conveyor, path: Path, *, index: Path, debounce_ms: int) -> bool:
    """Ask for a file to be re-indexed after `debounce_ms`, unless a job for it is already pending.

    Call it after the change is on disk. Returns False, adding nothing, when the file's job is running right
    now: it may have read the file before the change, so call again later (the watcher does, on its next tick).
    A job that is pending now starts after the change, so it reads it; one that is just being added may even
    start before this returns.
    """
    path = absolute(path)
    job_id = watch_job_id(index, path)
    queue = app.queue(QUEUE)
    state = await queue.state_of(job_id)
    if state is JobState.ACTIVE:
        return False
    if state in (JobState.FAILED, JobState.COMPLETED):  # a finished run kept for inspection: this save gets a new run
        await queue.remove(job_id)
    data = {"path": str(path), "index": str(index)}
    await app.add(QUEUE, INDEX_FILE, data, job_id=job_id, delay_ms=debounce_ms, keep_completed=0)
    return True


class ChangeWatcher:
    """Watches a repository (honouring its ignore rules) and enqueues debounced `index-file` jobs."""

    def __init__(
        self,
        app: Conveyor,
        root: Path,
        *,
        index: Path,
        debounce_ms: int,
        on_change: Callable[[Path], None] | None = None,
    ) -> None:
        self.app = app
        self.root = root.expanduser().resolve()
        self.index = index
        self.debounce_ms = debounce_ms
        self.on_change = on_change
        self.rules = IgnoreRules(self.root)

    def wanted(self, change: Change, raw_path: str) -> bool:
        """Whether an event concerns a file the index should follow."""
        path = Path(raw_path)
        return not path.is_dir() and not self.rules.ignored(path)

    async def run(self, stop: Any | None = None) -> None:
        """Watch until `stop` (an `asyncio.Event`) is set or the task is cancelled."""
        retry: set[Path] = set()
        tick_ms = max(self.debounce_ms, 100)
        async for changes in awatch(
            self.root,
            watch_filter=self.wanted,
            debounce=WATCHER_BATCH_MS,
            stop_event=stop,
            rust_timeout=tick_ms,
            yield_on_timeout=True,
        ):
            paths = {Path(raw) for _, raw in changes} | retry
            retry = set()
            for path in sorted(paths):
                if await enqueue_change(self.app, path, index=self.index, debounce_ms=self.debounce_ms):
                    if self.on_change is not None:
                        self.on_change(path)
                else:
                    retry.add(path)
