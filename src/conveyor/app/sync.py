"""`SyncConveyor`: a thin synchronous facade over a `Conveyor`, for callers without an event loop.

Flask or Django views, scripts and notebooks-turned-scripts enqueue and inspect jobs with plain calls:

    app = Conveyor()
    with SyncConveyor(app) as conveyor:
        job_id = conveyor.add("indexing", "index-file", {"filePath": "src/index.ts"}, priority="high")
        print(conveyor.counts("indexing"))

The facade runs a private event loop in a daemon thread and hands every call to it, so the Redis client
lives in one loop for its whole life and any number of caller threads may share one facade. Each call
blocks the calling thread until Redis answered. Call it from synchronous code only: from a coroutine it
would block that coroutine's event loop, so async code uses the `Conveyor` itself.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from conveyor.app.conveyor import Conveyor, NotConnectedError
from conveyor.errors import ConveyorError
from conveyor.queue.job import Job, JobState
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import NewJob, Queue, QueueCounts
from conveyor.worker.registry import WorkerInfo

T = TypeVar("T")

_STOP_TIMEOUT_S = 10.0


class SyncConveyorError(ConveyorError):
    """The facade cannot run the call (closed, shared with async code, or called from its own loop)."""


class SyncConveyor:
    """Blocking versions of the `Conveyor` producer and queue-management calls.

    Construct it from an application that is not connected yet (`SyncConveyor(app)`); the facade connects
    it on first use, in its own event loop, and owns that connection until `close()`. Meanwhile use the
    app only through the facade: its Redis client belongs to the facade's loop. Run workers elsewhere
    (`conveyor worker`, or `app.worker()` in async code); the facade produces and manages.

    Errors are those of the async API, raised in the calling thread (`UnknownQueueError`,
    `InvalidPayloadError`, `JobNotFoundError`, `RedisUnavailableError`, `RedisOutOfMemoryError`, …).

    Args:
        app: the application whose settings, queues and payload models the calls use.
    """

    def __init__(self, app: Conveyor) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._connected = False
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------------------

    def _start(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise SyncConveyorError("This SyncConveyor is closed; make a new one to keep going.")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="conveyor-sync", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _ensure_connected(self) -> None:
        # Runs in the facade's loop only, so creating the lock lazily here cannot race.
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._connected:
                return
            try:
                _ = self.app.client
            except NotConnectedError:
                pass
            else:
                raise SyncConveyorError(
                    "SyncConveyor needs a Conveyor that is not connected: it connects the app in its own "
                    "event loop. Pass a fresh Conveyor(settings), or use the connected app's async methods."
                )
            await self.app.connect()
            self._connected = True

    def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation()` in the facade's loop (connecting first) and wait for its result."""
        loop = self._start()
        if threading.current_thread() is self._thread:
            raise SyncConveyorError("SyncConveyor was called from its own event loop; await the Conveyor instead.")

        async def run() -> T:
            await self._ensure_connected()
            return await operation()

        return asyncio.run_coroutine_threadsafe(run(), loop).result()

    def connect(self) -> None:
        """Connect now instead of on the first call (to fail fast at startup when Redis is unreachable).

        Raises:
            RedisUnavailableError: Redis cannot be reached.
        """
        self._call(_nothing)

    def close(self) -> None:
        """Close the app's connections and stop the facade's loop and thread. Safe to call twice.

        Calls still running in other threads are cancelled: they raise `concurrent.futures.CancelledError`.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(_STOP_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT_S)
            if not thread.is_alive():
                loop.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        in_flight = [task for task in asyncio.all_tasks() if task is not current]
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)
        if self._connected:
            await self.app.close()

    def __enter__(self) -> SyncConveyor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def queue_names(self) -> list[str]:
        """Every configured queue: the standard three, then custom ones."""
        return self.app.queue_names

    def _queue(self, name: str) -> Queue:
        return self.app.queue(name)

    # --- producing -------------------------------------------------------------------------------------

    def add(
        self, queue: str, job_type: str, data: Any = None, options: JobOptions | None = None, **option_fields: Any
    ) -> str:
        """Enqueue a job and return its id; options as a `JobOptions` or keywords, as in `Conveyor.add`.

        Raises:
            UnknownQueueError / InvalidPayloadError / PayloadTooLargeError: nothing was written.
            EnqueueUnconfirmedError (a RedisUnavailableError): Redis did not confirm the add; the job may or may
                not have been added, and adding it again with the same id (`job_ids`) adds it at most once.
            RedisOutOfMemoryError: Redis is at its maxmemory and refused the write; nothing was written.
        """
        return self._call(lambda: self.app.add(queue, job_type, data, options, **option_fields))

    def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        """Enqueue many jobs in one round trip; all are validated before any is written."""
        return self._call(lambda: self.app.add_bulk(queue, jobs))

    # --- reading ---------------------------------------------------------------------------------------

    def get_job(self, queue: str, job_id: str) -> Job:
        """A snapshot of one job, or `JobNotFoundError`."""
        return self._call(lambda: self._queue(queue).get_job(job_id))

    def jobs(self, queue: str, state: JobState, start: int = 0, count: int = 50) -> list[Job]:
        """A page of jobs in one state: oldest first for pending states, newest first for finished ones."""
        return self._call(lambda: self._queue(queue).jobs(state, start, count))

    def counts(self, queue: str) -> QueueCounts:
        """Jobs per state of one queue, and whether it is paused."""
        return self._call(lambda: self._queue(queue).counts())

    def workers(self) -> list[WorkerInfo]:
        """Every live worker process."""
        return self._call(self.app.workers)

    # --- managing --------------------------------------------------------------------------------------

    def pause(self, queue: str) -> None:
        """Stop every worker from starting jobs of the queue; active jobs finish."""
        self._call(lambda: self._queue(queue).pause())

    def resume(self, queue: str) -> None:
        """Let workers start jobs of the queue again."""
        self._call(lambda: self._queue(queue).resume())

    def clear(self, queue: str, *, force: bool = False) -> None:
        """Delete every job of the queue (`QueueBusyError` while jobs are active, unless `force`)."""
        self._call(lambda: self._queue(queue).clear(force=force))

    def retry(self, queue: str, job_id: str) -> None:
        """Move a failed job back to pending with fresh attempts (`JobStateError` if it has not failed)."""
        self._call(lambda: self._queue(queue).retry(job_id))

    def retry_all_failed(self, queue: str) -> int:
        """Retry every failed job of the queue; returns how many were moved back."""
        return self._call(lambda: self._queue(queue).retry_all_failed())

    def promote(self, queue: str, job_id: str) -> None:
        """Run a delayed job now (`JobStateError` if it is not delayed)."""
        self._call(lambda: self._queue(queue).promote(job_id))

    def remove(self, queue: str, job_id: str) -> None:
        """Delete a job that is not active (`JobStateError` for an active one: cancel it instead)."""
        self._call(lambda: self._queue(queue).remove(job_id))

    def cancel(self, queue: str, job_id: str) -> JobState:
        """Cancel a job: a pending one is removed, an active one is asked to stop. Returns its prior state."""
        return self._call(lambda: self._queue(queue).cancel(job_id))


async def _nothing() -> None:
    return None
