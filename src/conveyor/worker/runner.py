"""The runtime of one queue inside a worker process: one fetcher feeding a fixed number of job slots.

A single fetch loop per queue (not one per slot) means an idle queue costs one blocked connection, and a
new job wakes exactly one fetcher per process instead of every idle slot (no thundering herd).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.queue.job import HISTORY_FIELD, QUEUED_AT_FIELD, AttemptRecord, parse_history
from conveyor.queue.options import keep_jobs
from conveyor.queue.queue import Queue
from conveyor.redis.script_errors import ScriptError
from conveyor.redis.scripts import FetchedJob
from conveyor.worker.context import JobContext, JobInfo
from conveyor.worker.errors import NonRetryableError, UnknownJobTypeError
from conveyor.worker.execution import attempt_budget_s, run_attempt
from conveyor.worker.handler import HandlerLookup
from conveyor.worker.hooks import AttemptEnd, AttemptStart, HookSet
from conveyor.worker.retry import decide_retry

log = logging.getLogger(__name__)

IDLE_BLOCK_S = 10.0  # longest blocking wait on the marker; a new job still wakes the fetcher at once
STACKTRACE_LIMIT = 10
REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


@dataclass(frozen=True)
class RunnerConfig:
    """How one queue is run inside a worker process."""

    queue: str
    concurrency: int
    lock_ms: int = 6000
    worker_name: str = "worker"


@dataclass
class ActiveJob:
    """A job this process holds the lock of."""

    job_id: str
    token: str
    ctx: JobContext
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    handed_back: bool = False


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
        self._closing = False
        self._wake = asyncio.Event()
        self._block_until_ms = 0
        self._unblocking: asyncio.Future[Any] | None = None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- fetching --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and start jobs until `stop_fetching` is called."""
        while not self._closing:
            await self._slots.acquire()
            fetched = await self._next_job()
            if fetched is None:
                self._slots.release()
                break
            self._start(*fetched)

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
        if self._block_until_ms <= self._now_ms():
            token = uuid.uuid4().hex  # the lock value: every later state change must present it
            fetched = await self.scripts.move_to_active(
                token=token, lock_ms=self.config.lock_ms, worker=self.config.worker_name, timestamp=self._now_ms()
            )
            if fetched.job_id:
                return fetched, token
            self._block_until_ms = fetched.next_delayed_ms
        await self._wait_for_marker()
        return None

    async def _wait_for_marker(self) -> None:
        timeout = IDLE_BLOCK_S
        timer: asyncio.TimerHandle | None = None
        if self._block_until_ms:
            wait_s = max(0.0, (self._block_until_ms - self._now_ms()) / 1000)
            timeout = min(timeout, wait_s + 1.0)
            # Redis ends a blocking wait only on its server tick (~100 ms at the default hz 10), so a delayed
            # job would start up to 100 ms late. A local timer unblocks the wait (CLIENT UNBLOCK) on time.
            blocking_id = await self.blocking.client_id()
            timer = asyncio.get_running_loop().call_later(wait_s, self._unblock, blocking_id)
        pop = asyncio.ensure_future(self.blocking.bzpopmin(self.queue.keys.marker, timeout))
        wake = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({pop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            if timer is not None:
                timer.cancel()
        if not pop.done():
            pop.cancel()  # shutting down: the blocking connection is closed with the worker
            return
        popped = pop.result()
        if popped is not None:
            # Score 0: jobs are waiting. Otherwise: the time the next delayed job is due.
            due = int(float(popped[2]))
            self._block_until_ms = min(due, self._block_until_ms) if self._block_until_ms else due

    def _unblock(self, client_id: int) -> None:
        self._unblocking = asyncio.ensure_future(self.queue.client.client_unblock(client_id))
        self._unblocking.add_done_callback(_log_failure)

    # --- running ---------------------------------------------------------------------------------------

    def _start(self, fetched: FetchedJob, token: str) -> None:
        assert fetched.job_id is not None
        fields = fetched.fields
        opts = json.loads(fields.get("opts") or "{}")
        info = JobInfo(
            id=fetched.job_id,
            queue=self.queue.name,
            type=fields.get("name", ""),
            attempt=int(fields.get("atm") or 0) + 1,
            max_attempts=int(opts.get("attempts") or 1),
            worker=self.config.worker_name,
        )
        active = ActiveJob(fetched.job_id, token, JobContext(info, self.scripts, asyncio.get_running_loop()))
        self.active[fetched.job_id] = active
        active.task = asyncio.create_task(self._process(active, fields, opts), name=f"job:{fetched.job_id}")

    async def _process(self, active: ActiveJob, fields: dict[str, str], opts: dict[str, Any]) -> None:
        start = AttemptStart(active.ctx.job, fields, self._wait_s(fields, opts))
        self.hooks.attempt_started(start)
        began = time.monotonic()
        outcome, error = "lost", None
        try:
            with self.hooks.around_attempt(start):
                result, error = await self._attempt(active, fields, opts)
                await active.ctx.close()
                if not active.handed_back:
                    outcome = await self._finish(active, fields, opts, result, error)
        except asyncio.CancelledError:
            if not active.handed_back:
                raise
        except ScriptError as exc:
            log.warning("job %s of %s lost before it finished: %s", active.job_id, self.queue.name, exc)
        except REDIS_ERRORS as exc:
            log.error("job %s of %s: Redis unavailable at finish (%s); the stalled check will requeue it",
                      active.job_id, self.queue.name, exc)  # fmt: skip
        finally:
            self.active.pop(active.job_id, None)
            self.processed += 1
            self._slots.release()
        if outcome != "lost":
            self.hooks.attempt_ended(AttemptEnd(active.ctx.job, outcome, time.monotonic() - began, error))

    def _wait_s(self, fields: dict[str, str], opts: dict[str, Any]) -> float:
        # Due time: when a retry became due, else creation plus the requested delay (BullMQ resets the hash's
        # `delay` field when it promotes the job, so read the original from the options).
        queued = fields.get(QUEUED_AT_FIELD) or int(fields.get("timestamp") or 0) + int(opts.get("delay") or 0)
        processed = int(fields.get("processedOn") or self._now_ms())
        return max(0.0, (processed - int(queued)) / 1000)

    async def _attempt(
        self, active: ActiveJob, fields: dict[str, str], opts: dict[str, Any]
    ) -> tuple[Any, BaseException | None]:
        handler = self.lookup(self.queue.name, active.ctx.job.type)
        try:
            if fields.get("defa"):
                raise NonRetryableError(fields["defa"])
            if handler is None:
                raise UnknownJobTypeError(
                    f"no handler for job type {active.ctx.job.type!r} on queue {self.queue.name!r}"
                )
            budget, is_deadline = attempt_budget_s(opts.get("timeout"), opts.get("deadline"), self._now_ms())
            data = json.loads(fields.get("data") or "{}")
            result = await run_attempt(
                handler,
                data,
                active.ctx,
                self.executor,
                budget_s=budget,
                limit_is_deadline=is_deadline,
                cancel=active.cancel,
            )
            json.dumps(result)  # a result that is not JSON fails the attempt here, not in Redis
            return result, None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return None, exc

    async def _finish(
        self, active: ActiveJob, fields: dict[str, str], opts: dict[str, Any], result: Any, error: BaseException | None
    ) -> str:
        if error is None:
            await self._finished(
                active, "completed", json.dumps(result, separators=(",", ":")), keep_jobs(opts.get("removeOnComplete"))
            )
            return "completed"
        now = self._now_ms()
        decision = decide_retry(
            error,
            attempts_made=active.ctx.job.attempt,
            max_attempts=active.ctx.job.max_attempts,
            backoff=opts.get("backoff"),
            deadline_ms=opts.get("deadline"),
            now_ms=now,
        )
        updates = self._failure_fields(active, fields, error)
        if not decision.retry:
            reason = updates.pop("failedReason")
            await self._finished(active, "failed", reason, keep_jobs(opts.get("removeOnFail")), updates)
            return "failed"
        updates[QUEUED_AT_FIELD] = str(now + decision.delay_ms)
        if decision.delay_ms > 0:
            await self.scripts.move_to_delayed(
                job_id=active.job_id, token=active.token, timestamp=now, delay_ms=decision.delay_ms, fields=updates
            )
        else:
            await self.scripts.retry_job(job_id=active.job_id, token=active.token, timestamp=now, fields=updates)
        return "retried"

    async def _finished(
        self, active: ActiveJob, target: str, value: str, keep: dict[str, int], fields: dict[str, str] | None = None
    ) -> None:
        await self.scripts.move_to_finished(
            job_id=active.job_id,
            token=active.token,
            target=target,
            value=value,
            timestamp=self._now_ms(),
            keep=keep,
            attempts=active.ctx.job.max_attempts,
            fetch_next=False,
            lock_ms=self.config.lock_ms,
            worker=self.config.worker_name,
            fields=fields,
        )

    def _failure_fields(self, active: ActiveJob, fields: dict[str, str], error: BaseException) -> dict[str, str]:
        reason = f"{type(error).__name__}: {error}"
        stack = "".join(traceback.format_exception(error))
        record = AttemptRecord(
            attempt=active.ctx.job.attempt,
            error=reason,
            stacktrace=stack,
            failed_at=datetime.fromtimestamp(self._clock(), UTC),
            worker=self.config.worker_name,
        )
        history = [*parse_history(fields.get(HISTORY_FIELD)), record]
        stacks = [*json.loads(fields.get("stacktrace") or "[]"), stack][-STACKTRACE_LIMIT:]
        return {
            "failedReason": reason,
            "stacktrace": json.dumps(stacks),
            HISTORY_FIELD: json.dumps([item.to_json() for item in history]),
        }

    # --- control from the worker -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; it fails as cancelled. False if this process does not run it."""
        active = self.active.get(job_id)
        if active is None:
            return False
        active.cancel.set()
        return True

    async def hand_back(self) -> int:
        """Return every still-running job to waiting without counting an attempt (end of a shutdown grace
        period). Returns how many were handed back."""
        jobs = list(self.active.values())
        for active in jobs:
            active.handed_back = True
            active.ctx.cancelled.set()
            if active.task is not None:
                active.task.cancel()
        for active in jobs:
            try:
                await self.scripts.hand_back(active.job_id, active.token)
            except (ScriptError, *REDIS_ERRORS) as exc:
                log.warning("could not hand back job %s (%s); the stalled check will requeue it", active.job_id, exc)
        return len(jobs)


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("could not unblock the fetcher on time: %s", future.exception())
