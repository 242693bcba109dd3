"""What a handler gets besides its payload: job facts, progress, logs and a cancellation flag."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from conveyor.redis.scripts import QueueScripts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobInfo:
    """Facts about the running attempt."""

    id: str
    queue: str
    type: str
    attempt: int
    max_attempts: int
    worker: str


# The job whose attempt runs in this context (the worker sets it for the length of each attempt, in the slot's
# task; handler threads and tasks started by a handler inherit it). Log records take the job's fields from it.
current_job: ContextVar[JobInfo | None] = ContextVar("conveyor_current_job", default=None)

_CANCELLED_MADE = threading.Lock()


class JobContext:
    """Passed to a handler as its second argument (when it takes one).

    `progress()` and `log()` may be called from async handlers and from sync handlers in threads alike; the
    writes happen in order on the event loop and are all stored before the job completes. Long-running
    handlers should check `cancelled` (a `threading.Event`) to stop early when the job is cancelled or timed
    out; async handlers are also interrupted with `asyncio.CancelledError`.
    """

    def __init__(self, info: JobInfo, scripts: QueueScripts, loop: asyncio.AbstractEventLoop) -> None:
        self.job = info
        self._cancelled: threading.Event | None = None  # made on first use: most jobs are never cancelled
        self.cancel_requested = False  # set by the runtime when someone cancels the job
        self.thread: Future[Any] | None = None  # a sync handler's run in the worker's thread pool
        self._scripts = scripts
        self._loop = loop
        self._outbox: asyncio.Queue[tuple[str, Any]] | None = None  # made on first use: most jobs never log
        self._writer: asyncio.Task[None] | None = None

    @property
    def cancelled(self) -> threading.Event:
        """Set when the job is cancelled or its attempt timed out: long-running sync handlers check it."""
        event = self._cancelled
        if event is None:
            with _CANCELLED_MADE:  # a handler thread and the event loop may ask first at the same time
                if self._cancelled is None:
                    self._cancelled = threading.Event()
                event = self._cancelled
        return event

    @property
    def in_thread(self) -> bool:
        """True while a sync handler of this job runs in a thread: Python cannot interrupt it."""
        return self.thread is not None and not self.thread.done()

    def progress(self, value: int | float | dict[str, Any]) -> None:
        """Report progress: a number (e.g. percent) or a JSON object."""
        self._post(("progress", value))

    def log(self, line: str) -> None:
        """Append a line to the job's log."""
        self._post(("log", str(line)))

    def _post(self, item: tuple[str, Any]) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._enqueue(item)
        else:
            # From a handler thread. These callbacks run before the loop learns that the handler returned
            # (that news also travels by call_soon_threadsafe), so `close()` always sees them.
            self._loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: tuple[str, Any]) -> None:
        if self._outbox is None:
            self._outbox = asyncio.Queue()
            self._writer = self._loop.create_task(self._write(self._outbox))
        self._outbox.put_nowait(item)

    async def _write(self, outbox: asyncio.Queue[tuple[str, Any]]) -> None:
        while True:
            kind, value = await outbox.get()
            try:
                if kind == "progress":
                    await self._scripts.update_progress(self.job.id, value)
                else:
                    await self._scripts.add_log(self.job.id, value)
            except Exception:
                log.warning("could not store %s of job %s", kind, self.job.id, exc_info=True)
            finally:
                outbox.task_done()

    async def close(self) -> None:
        """Store every pending progress/log write, then stop the writer."""
        if self._outbox is None or self._writer is None:
            return
        await self._outbox.join()
        self._writer.cancel()
