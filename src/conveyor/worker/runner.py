"""The runtime of one queue inside a worker process: one fetcher feeding a fixed number of job slots.

A single fetch loop per queue (not one per slot) means an idle queue costs one blocked connection, and a
new job wakes exactly one fetcher per process instead of every idle slot (no thundering herd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.config import RateLimit
from conveyor.queue.queue import Queue
from conveyor.redis.script_errors import ScriptError
from conveyor.redis.scripts import FetchedJob
from conveyor.worker.attempt import ActiveJob, execute, record
from conveyor.worker.batching import Batcher
from conveyor.worker.handler import Handler, HandlerLookup
from conveyor.worker.hooks import AttemptEnd, AttemptStart, HookSet
from conveyor.worker.limits import Admission

log = logging.getLogger(__name__)

IDLE_BLOCK_S = 30.0  # longest blocking wait on the marker; a new job still wakes the fetcher at once
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class RunnerConfig:
    """How one queue is run inside a worker process."""

    queue: str
    concurrency: int
    lock_ms: int = 6000
    worker_name: str = "worker"
    worker_limit: RateLimit | None = None  # per worker process; the queue-wide limit is BullMQ's (meta hash)
    group_limits: dict[str, RateLimit] = field(default_factory=dict)  # per `rate_key`, shared by all workers
    global_concurrency: bool = False  # the queue has a queue-wide concurrency (BullMQ's meta `concurrency`)
    reserved_slots: int = 0
    reserved_priority: int = 1


class QueueRunner:
    """Fetches jobs of one queue and runs them with at most `concurrency` at a time."""

    def __init__(
        self,
        queue: Queue,
        blocking: Redis,
        lookup: HandlerLookup,
        executor: Executor,
        config: RunnerConfig,
        clock: Callable[[], float] = time.time,
        hooks: HookSet | None = None,
    ) -> None:
        self.queue = queue
        self.scripts = queue.scripts
        self.blocking = blocking
        self.lookup = lookup
        self.executor = executor
        self.config = config
        self.hooks = hooks or HookSet()
        self.active: dict[str, ActiveJob] = {}
        self.processed = 0
        self._clock = clock
        self._slots = asyncio.Semaphore(config.concurrency)
        self._busy_slots = 0
        self.admission = Admission(
            queue.client, queue.keys.prioritized, config.worker_limit, config.reserved_slots, config.reserved_priority
        )
        self._blocking_id: int | None = None  # of the blocking connection, while a nudgeable wait is on
        self._closing = False
        self._wake = asyncio.Event()
        self._block_until_ms = 0
        self._check_now = True  # look for jobs at once on start
        self._just_fetched = False
        self._backlog = True  # finishing jobs fetch the next one while the queue has a backlog
        self._unblocking: asyncio.Future[Any] | None = None
        self._slot_tasks: set[asyncio.Task[None]] = set()
        self._batchers: dict[str, Batcher] = {}

    def batcher(self, handler: Handler) -> Batcher | None:
        """The batch collector of a batch handler (one per job type in this runner), else None."""
        if handler.batch is None:
            return None
        batcher = self._batchers.get(handler.job_type)
        if batcher is None:
            batcher = Batcher(handler.func, handler.is_async, handler.takes_context, handler.batch, self.executor)
            self._batchers[handler.job_type] = batcher
        return batcher

    def now_ms(self) -> int:
        """The runner's clock in milliseconds (injectable for tests)."""
        return int(self._clock() * 1000)

    # --- fetching --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and start jobs until `stop_fetching` is called."""
        while not self._closing:
            await self._slots.acquire()
            self._busy_slots += 1
            fetched = await self._next_job()
            if fetched is None:
                self._release_slot()
                break
            self._start(*fetched)

    def _release_slot(self) -> None:
        self._busy_slots -= 1
        self._slots.release()
        if self.admission.reserved_slots:
            self._check_now = True
            self._nudge()  # a freed slot may be one the fetcher was holding back for priority jobs

    def stop_fetching(self) -> None:
        """Start no new jobs. Interrupts only the blocking wait, never a script call in flight, so no job is
        moved to active without being started."""
        self._closing = True
        self._wake.set()

    async def _next_job(self) -> tuple[FetchedJob, str] | None:
        failures = 0
        while not self._closing:
            try:
                fetched = await self._try_fetch()
            except REDIS_ERRORS as exc:
                failures += 1
                delay = min(0.05 * 2**failures, 2.0)
                log.warning("queue %s: Redis unavailable (%s); retrying in %.2f s", self.queue.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if fetched is not None:
                return fetched
        return None

    async def _try_fetch(self) -> tuple[FetchedJob, str] | None:
        """One step of the fetch loop: take a job if there is reason to look, else wait for a wake-up."""
        now = self.now_ms()
        if 0 < self._block_until_ms <= now:
            return await self._fetch(now)  # a delayed job is due
        if self._check_now:
            self._check_now = False
            # Right after a fetch, BullMQ's script has re-added the wake-up marker whether or not jobs remain, so
            # probe cheaply first. After a real wait, a marker means new work: fetch at once (lowest latency).
            if not self._just_fetched or await self._has_waiting():
                return await self._fetch(now)
            self._just_fetched = False
        await self._wait_for_marker()
        return None

    async def _fetch(self, now: int) -> tuple[FetchedJob, str] | None:
        verdict = await self.admission.verdict(now, self.config.concurrency - self._busy_slots + 1)
        if verdict is None:
            self._block_until_ms = 0  # wait for a wake-up: new work or a freed slot (which looks again)
            return None
        if verdict:
            self._block_until_ms = now + verdict  # this worker's own rate limit
            return None
        token = uuid.uuid4().hex  # the lock value: every later state change must present it
        fetched = await self.scripts.move_to_active(
            token=token, lock_ms=self.config.lock_ms, worker=self.config.worker_name, timestamp=now
        )
        self._just_fetched = bool(fetched.job_id)
        if fetched.job_id:
            return fetched, token
        self.admission.unused()
        if fetched.rate_limit_delay_ms:  # the queue-wide rate limit: look again when its window ends
            self._block_until_ms = now + fetched.rate_limit_delay_ms
        else:
            self._block_until_ms = fetched.next_delayed_ms  # known only when no job came back
        return None

    async def _has_waiting(self) -> bool:
        """Two cheap reads instead of an empty `moveToActive` (about ten Redis calls). Also notes whether there
        is a backlog, which decides if finishing jobs should fetch the next one."""
        pipe = self.queue.client.pipeline(transaction=False)
        pipe.llen(self.queue.keys.wait)
        pipe.zcard(self.queue.keys.prioritized)
        waiting = int(sum(await pipe.execute()))
        self._backlog = waiting > 1
        return waiting > 0

    async def _wait_for_marker(self) -> None:
        timeout = IDLE_BLOCK_S
        timer: asyncio.TimerHandle | None = None
        if self._block_until_ms or self.admission.reserved_slots:
            self._blocking_id = await self.blocking.client_id()
        if self._block_until_ms:
            wait_s = max(0.0, (self._block_until_ms - self.now_ms()) / 1000)
            timeout = min(timeout, wait_s + 1.0)
            # Redis ends a blocking wait only on its server tick (~100 ms at the default hz 10), so a delayed
            # job would start up to 100 ms late. A local timer unblocks the wait (CLIENT UNBLOCK) on time.
            timer = asyncio.get_running_loop().call_later(wait_s, self._nudge)
        pop = asyncio.ensure_future(self.blocking.bzpopmin(self.queue.keys.marker, timeout))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({pop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            self._blocking_id = None
            if timer is not None:
                timer.cancel()
        if not pop.done():
            pop.cancel()  # shutting down: the blocking connection is closed with the worker
            return
        popped = pop.result()
        if popped is None:
            self._check_now = True  # idle timeout or unblocked: look again (also a safety net for lost markers)
            return
        # Score 0: jobs are waiting. Otherwise: the time the next delayed job is due.
        due = int(float(popped[2]))
        if due == 0:
            self._check_now = True
        else:
            self._block_until_ms = min(due, self._block_until_ms) if self._block_until_ms else due

    def _nudge(self) -> None:
        """End the current blocking wait now (it returns as if timed out), if one is on and can be ended."""
        if self._blocking_id is None:
            return
        self._unblocking = asyncio.ensure_future(self.queue.client.client_unblock(self._blocking_id))
        self._unblocking.add_done_callback(_log_failure)

    # --- running ---------------------------------------------------------------------------------------

    def _start(self, fetched: FetchedJob, token: str) -> None:
        task = asyncio.create_task(self._run_slot(fetched, token), name=f"slot:{self.queue.name}")
        self._slot_tasks.add(task)
        task.add_done_callback(self._slot_tasks.discard)

    async def _run_slot(self, fetched: FetchedJob | None, token: str) -> None:
        """Run jobs in one slot: the first one fetched, then, while the queue has a backlog, each next one
        handed over by fetch-next. A trickling queue skips fetch-next: it would come back empty."""
        fetch_next = self.config.global_concurrency or (self._backlog and not self.admission.restricts_fetch_next)
        try:
            while fetched is not None and not self._closing:
                fetched = await self._run_one(ActiveJob.from_fetched(fetched, token, self), fetch_next)
        finally:
            self._release_slot()
            if self.config.global_concurrency:
                # BullMQ wakes no one when a job of a queue at its global concurrency ends: wake the fetchers.
                await self.queue.client.zadd(self.queue.keys.marker, {"0": 0})

    async def _run_one(self, job: ActiveJob, fetch_next: bool) -> FetchedJob | None:
        self.active[job.job_id] = job
        start = AttemptStart(job.ctx.job, job.fields, job.wait_s(self.now_ms())) if self.hooks.hooks else None
        began = time.monotonic()
        outcome, error, fetched = "lost", None, None
        try:
            with self.hooks.around_attempt(start) if start else contextlib.nullcontext():
                if start:
                    self.hooks.attempt_started(start)
                result, error = await execute(self, job)
                await job.ctx.close()
                outcome, fetched = await record(self, job, result, error, fetch_next and not self._closing)
        except asyncio.CancelledError:
            if not job.handed_back:
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
        except ScriptError as exc:
            log.warning("job %s of %s lost before it finished: %s", job.job_id, self.queue.name, exc)
        except REDIS_ERRORS as exc:
            log.error("job %s of %s: Redis unavailable at finish (%s); the stalled check will requeue it",
                      job.job_id, self.queue.name, exc)  # fmt: skip
        finally:
            del self.active[job.job_id]
            self.processed += 1
        if start and outcome != "lost":
            self.hooks.attempt_ended(AttemptEnd(job.ctx.job, outcome, time.monotonic() - began, error))
        return fetched

    # --- control from the worker -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; it fails as cancelled. False if this process does not run it."""
        job = self.active.get(job_id)
        if job is None or job.task is None:
            return False
        job.ctx.cancel_requested = True
        job.ctx.cancelled.set()
        job.task.cancel()
        return True

    def holds(self, job_id: str, token: str) -> bool:
        """True while this runner runs the job under that lock token."""
        job = self.active.get(job_id)
        return job is not None and job.token == token

    async def hand_back(self) -> int:
        """Return every still-running job to waiting without counting an attempt (end of a shutdown grace
        period). Returns how many were handed back."""
        jobs = list(self.active.values())
        for job in jobs:
            job.handed_back = True
            job.ctx.cancelled.set()
            if job.task is not None:
                job.task.cancel()
        for job in jobs:
            try:
                await self.scripts.hand_back(job.job_id, job.token)
            except (ScriptError, *REDIS_ERRORS) as exc:
                log.warning("could not hand back job %s (%s); the stalled check will requeue it", job.job_id, exc)
        return len(jobs)


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not unblock the fetcher on time: %s", future.exception())
