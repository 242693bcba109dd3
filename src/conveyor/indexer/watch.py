"""Watch mode: re-index files as they change, a burst of saves to one file becoming one job.

The watcher debounces from the *last* save (`TrailingDebounce`): a file is enqueued once it has been quiet
for the debounce time, so 20 saves spread over 4 s are one job, not one per window. The queue deduplicates
too, which holds between several watchers of one repository: each file has a deterministic job id
(`watch-<hash of index and path>`), and adding an id that already exists is a no-op in BullMQ. The job reads
the file when it runs, so it indexes the latest save.

Nothing in the tree stops the watcher: an event for a path it cannot inspect (a symlink loop, a file without
permissions, one gone already) is enqueued or dropped like any other, and the job records the outcome.

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
import time
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


class TrailingDebounce:
    """Paths waiting for their saves to stop: each is due `debounce_ms` after the last time it was seen."""

    def __init__(self, debounce_ms: int, now: Callable[[], float] = time.monotonic) -> None:
        self.debounce_s = debounce_ms / 1000
        self.now = now
        self._last_seen: dict[Path, float] = {}

    @property
    def pending(self) -> int:
        """How many paths are waiting."""
        return len(self._last_seen)

    def saw(self, paths: set[Path]) -> None:
        """Note a save of each path (restarting its wait)."""
        seen = self.now()
        for path in paths:
            self._last_seen[path] = seen

    def due(self) -> list[Path]:
        """The paths quiet for the debounce time, in order, taken out of the waiting set."""
        cutoff = self.now() - self.debounce_s
        ready = sorted(path for path, seen in self._last_seen.items() if seen <= cutoff)
        for path in ready:
            del self._last_seen[path]
        return ready


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
        self.debounce = TrailingDebounce(debounce_ms)

    def wanted(self, change: Change, raw_path: str) -> bool:
        """Whether an event concerns a file the index should follow (never raises: a path that cannot be
        inspected is the job's to report)."""
        path = Path(raw_path)
        try:
            return not path.is_dir() and not self.rules.ignored(path)
        except (OSError, RuntimeError, ValueError):
            log.debug("watch: cannot inspect %s", raw_path, exc_info=True)
            return False

    async def run(self, stop: Any | None = None) -> None:
        """Watch until `stop` (an `asyncio.Event`) is set or the task is cancelled."""
        tick_ms = max(min(self.debounce_ms // 2, 100), 20)
        async for changes in awatch(
            self.root,
            watch_filter=self.wanted,
            debounce=WATCHER_BATCH_MS,
            stop_event=stop,
            rust_timeout=tick_ms,
            yield_on_timeout=True,
        ):
            self.debounce.saw({Path(raw) for _, raw in changes})
            busy = {path for path in self.debounce.due() if not await self._enqueue(path)}
            self.debounce.saw(busy)  # its job is running: try again after another quiet period

    async def _enqueue(self, path: Path) -> bool:
        if not await enqueue_change(self.app, path, index=self.index, debounce_ms=0):
            return False
        if self.on_change is not None:
            self.on_change(path)
        return True
