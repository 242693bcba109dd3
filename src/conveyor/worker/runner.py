"""The runtime of one queue inside a worker process: one fetcher feeding a fixed number of job slots.

A single fetch loop per queue (not one per slot) means an idle queue costs one blocked connection, and a
new job wakes exactly one fetcher per process instead of every idle slot (no thundering herd).

The loop asks its `FetchPlan` what to do next (probe, fetch, wait, or wait with the fetch sent behind the wait:
`conveyor.worker.fetch_plan`), does it, and tells the plan what happened. Each job runs in a slot task: an
attempt (`conveyor.worker.attempt`) under the runner's policies (`conveyor.worker.policies`), watched by its
hooks (`conveyor.worker.hooks`). While the queue has a backlog, recording a job fetches the next one in the same
script call, and the slot runs that one next; a few jobs may be prefetched, and a slot whose handler returns
starts one of them while it records (`conveyor.worker.prefetch`).

A job taken ahead of its start (behind a wait, prefetched, or by a fetch whose reply came late) starts only if
its lock is still this worker's (`conveyor.worker.fencing`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import cast

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, ResponseError

from conveyor.config import RateLimit
from conveyor.queue.queue import Queue
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.script_errors import ScriptError
from conveyor.redis.scripts import FetchedJob
from conveyor.worker.active import ActiveJob
from conveyor.worker.attempt import AttemptEnv, execute, record
from conveyor.worker.context import current_job
from conveyor.worker.fencing import lock_is_fresh, lock_still_ours
from conveyor.worker.fetch_plan import FetchAction, FetchPlan
from conveyor.worker.fetched import taken_despite
from conveyor.worker.handler import Batchers, HandlerLookup
from conveyor.worker.hooks import AttemptEnd, AttemptStart, HookSet, Outcome
from conveyor.worker.limits import Admission
from conveyor.worker.policies import Policies
from conveyor.worker.prefetch import Prefetcher
from conveyor.worker.routing import JobTypeRouting
from conveyor.worker.waiting import MarkerWait, warn_if_failed

log = logging.getLogger(__name__)

Taken = tuple[FetchedJob, str, float]  # a job moved to active, its lock token, when the fetch was sent (monotonic)


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
    prefetch: int = 0  # jobs moved to active ahead of a free slot, at most (see `conveyor.worker.prefetch`)


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
        routing: JobTypeRouting | None = None,
    ) -> None:
        self.queue = queue
        self.scripts = queue.scripts
        self.waits = MarkerWait(queue, blocking)
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
        self.plan = FetchPlan()
        self.prefetch = Prefetcher(queue.name, self.plan, self, self._slots)
        policies = Policies.standard(queue.client, queue.conveyor_keys, config.group_limits)
        # The attempt reads the time through the runner's `now_ms`, looked up at each call: tests replace it.
        self.env = AttemptEnv(
            queue, queue.scripts, lookup, executor, config.worker_name, config.lock_ms, policies, Batchers(executor),
            routing, lambda: self.now_ms(),
        )  # fmt: skip
        self._wake = asyncio.Event()
        self._slot_tasks: set[asyncio.Task[None]] = set()
        # Slot tasks start from the runner's context, not from the attempt that passed them a slot: a slot
        # started inside an attempt would otherwise log every later line with that attempt's job fields.
        self._slot_context = contextvars.copy_context()

    @property
    def prefetched(self) -> list[str]:
        """Ids of the jobs taken ahead of a free slot (active and locked in Redis, not started yet)."""
        return self.prefetch.job_ids

    def now_ms(self) -> int:
        """The runner's clock in milliseconds (injectable for tests)."""
        return int(self._clock() * 1000)

    # --- fetching --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and start jobs until `stop_fetching` is called."""
        self._settle_config()
        try:
            while not self.plan.closing:
                await self._slots.acquire()
                self._busy_slots += 1
                ready = self.prefetch.next_ready()  # a prefetched job came in while no slot was free
                if ready is not None:
                    self.start_job(ready)
                    continue
                taken = await self._next_job()
                if taken is None:
                    self._release_slot()
                    break
                self.start_job(self._hold(*taken))
                await asyncio.sleep(0)  # let the job start before this loop prepares its next wait
        finally:
            self.waits.close()

    def _settle_config(self) -> None:
        """The configuration is final once the runner runs (the worker turns on `global_concurrency` when it
        finds a queue-wide concurrency in force): what may fetch behind a wait, and how much may be prefetched.
        Both need a fetcher with nothing to decide (no queue-wide concurrency, rate limit or priority lanes)."""
        config = self.config
        plain = not config.global_concurrency and not self.admission.restricts_fetch_next
        self.plan.wait_may_fetch = plain and self.waits.carries_fetch
        # Prefetched jobs would count against a queue-wide concurrency; with one slot, the fetcher holds it while
        # it waits: none would be left.
        self.prefetch.size = config.prefetch if plain and config.concurrency >= 2 else 0

    def _release_slot(self) -> None:
        self._busy_slots -= 1
        self._slots.release()
        if self.admission.reserved_slots:
            self.plan.look_again()
            self.waits.nudge()  # a freed slot may be one the fetcher was holding back for priority jobs

    def stop_fetching(self) -> None:
        """Start no new jobs. Interrupts only the blocking wait, never a script call in flight, so no job is
        moved to active without being started."""
        self.plan.close()
        self._wake.set()

    async def _next_job(self) -> Taken | None:
        failures = 0
        while not self.plan.closing:
            try:
                fetched = await self._step()
            except Exception as exc:  # the queue must keep serving whatever one fetch ran into
                failures += 1
                await self._back_off(exc, failures)
                continue
            failures = 0
            if fetched is not None:
                return fetched
        return None

    async def _back_off(self, exc: Exception, failures: int) -> None:
        delay = min(0.05 * 2**failures, 2.0)
        if isinstance(exc, CONNECTION_FAILURES):
            log.warning("queue %s: Redis unavailable (%s); retrying in %.2f s", self.queue.name, exc, delay)
        else:  # e.g. a BullMQ script that errored on a job hash
            log.error("queue %s: fetching a job failed; retrying in %.2f s", self.queue.name, delay, exc_info=exc)
        await asyncio.sleep(delay)

    async def _step(self) -> Taken | None:
        """One step of the fetch loop, the one the plan says (see `conveyor.worker.fetch_plan`)."""
        now = self.now_ms()
        step = self.plan.next_step(now)
        if step.action is FetchAction.FETCH:
            return await self._fetch(now)
        if step.action is FetchAction.PROBE:
            self.plan.probed(await self._waiting())
            return None
        if step.action is FetchAction.WAIT_AND_FETCH:
            return await self._wait_and_fetch(now)
        nudgeable = self.admission.reserved_slots > 0
        self.plan.woke(await self.waits.pop(self._wake, nudgeable=nudgeable, due_in_s=step.due_in_s))
        return None

    async def _fetch(self, now: int) -> Taken | None:
        verdict = await self.admission.verdict(now, self.config.concurrency - self._busy_slots + 1)
        if verdict is None:
            self.plan.held_back()
            return None
        if verdict:
            self.plan.rate_limited(now + verdict)  # this worker's own rate limit
            return None
        token = uuid.uuid4().hex  # the lock value: every later state change must present it
        sent = time.monotonic()
        fetched = await self._take(token, now)
        if fetched.job_id:
            self.plan.fetched()
            return fetched, token, sent
        self._came_back_empty(fetched, now)
        return None

    async def _take(self, token: str, now: int) -> FetchedJob:
        """`moveToActive`. A job the script took before it failed comes back to be failed as malformed."""
        config = self.config
        # The start time as of now, not as of the loop step: the checks before (admission, a probe, on a cluster
        # a first connection) may take long enough for a job added meanwhile to look started before it was made.
        started = max(now, self.now_ms())
        try:
            return await self.scripts.move_to_active(
                token=token, lock_ms=config.lock_ms, worker=config.worker_name, timestamp=started
            )
        except ResponseError as exc:
            return await taken_despite(self.scripts, token, exc)

    def _came_back_empty(self, fetched: FetchedJob, now: int) -> None:
        self.admission.unused()
        self.plan.came_back_empty(now, fetched.next_delayed_ms, fetched.rate_limit_delay_ms)

    async def _wait_and_fetch(self, now: int) -> Taken | None:
        """Wait for the marker with `moveToActive` queued behind the wait: a job that arrives is taken without a
        round trip after the wake-up. The script stamps `processedOn` with the time the wait began, so that is
        set again once the job is in hand (before it starts, and ahead of its completion on the same lane)."""
        token = uuid.uuid4().hex
        config = self.config
        sent = time.monotonic()  # the job may be taken any time after this: `lock_still_ours` checks at its start
        try:
            fetched = await self.waits.pop_then_fetch(
                self._wake, token=token, lock_ms=config.lock_ms, worker=config.worker_name, timestamp=now
            )
        except NoScriptError:
            self.plan.look_again()  # Redis forgot the script: the usual fetch loads it
            return None
        except ResponseError as exc:
            fetched = await taken_despite(self.scripts, token, exc)
        if fetched.job_id is None:  # a timeout, a delayed job's marker, or another worker was quicker
            self._came_back_empty(fetched, self.now_ms())
            return None
        self.plan.fetched()
        if self.plan.closing:
            await self.give_back(self._hold(fetched, token, sent))
            return None
        started = self.now_ms()
        fetched.fields["processedOn"] = str(started)
        restamping = self.scripts.restamp_started(fetched.job_id, started)
        restamping.add_done_callback(warn_if_failed("record a job's start time"))
        return fetched, token, sent

    async def _waiting(self) -> int:
        """How many jobs wait: two cheap reads instead of an empty `moveToActive` (about ten Redis calls)."""
        pipe = self.queue.client.pipeline(transaction=False)
        pipe.llen(self.queue.keys.wait)
        pipe.zcard(self.queue.keys.prioritized)
        return int(sum(await pipe.execute()))

    async def take_ahead(self) -> ActiveJob | None:
        """Move one job to active ahead of a free slot and hold it (None: no job waits); for `Prefetcher`."""
        token = uuid.uuid4().hex
        sent = time.monotonic()
        fetched = await self._take(token, self.now_ms())
        return self._hold(fetched, token, sent) if fetched.job_id else None

    # --- running ---------------------------------------------------------------------------------------

    def _hold(self, fetched: FetchedJob, token: str, sent: float) -> ActiveJob:
        job = ActiveJob.from_fetched(fetched, token, self.queue.name, self.config.worker_name, self.scripts)
        job.lock_since = sent
        self.active[job.job_id] = job  # from now on its lock is renewed and it can be cancelled
        return job

    def start_job(self, job: ActiveJob) -> None:
        """Run `job` in a new slot task; the caller has taken the slot."""
        task = asyncio.create_task(
            self._run_slot(job), name=f"slot:{self.queue.name}", context=self._slot_context.copy()
        )
        job.task = task  # from now on a shutdown waits for it (through its grace period), even before it runs
        self._slot_tasks.add(task)
        task.add_done_callback(self._slot_tasks.discard)

    def start_job_in_free_slot(self, job: ActiveJob) -> None:
        """Run `job` in a new slot task; the caller has just taken a free slot from the semaphore."""
        self._busy_slots += 1
        self.start_job(job)

    async def _run_slot(self, job: ActiveJob) -> None:
        """Run jobs in one slot: the first one, then each next one handed over by fetch-next while the queue
        has a backlog (a trickling queue skips fetch-next: it would come back empty). Ends early, without
        freeing the slot, when the slot was passed on to a prefetched job."""
        fetch_next = self.config.global_concurrency or (self.plan.backlog and not self.admission.restricts_fetch_next)
        task = cast("asyncio.Task[None]", asyncio.current_task())
        current = job
        try:
            while True:  # the job this slot was started with runs even if a shutdown began meanwhile
                next_job = await self._run_one(current, fetch_next, task)
                if current.passed_slot:
                    if next_job is not None:
                        await self.prefetch.offer(next_job)
                    return
                if next_job is None:  # nothing came back: a prefetched job, if any, before freeing the slot
                    next_job = self.prefetch.next_ready()
                    if next_job is None:
                        return
                current = next_job
                if self.plan.closing:
                    await self.give_back(current)  # shutting down: a job fetch-next took is never started
                    return
        finally:
            if not current.passed_slot:
                self._release_slot()
                if self.config.global_concurrency:
                    # BullMQ wakes no one when a job of a queue at its global concurrency ends: wake the fetchers.
                    await self.queue.client.zadd(self.queue.keys.marker, {"0": 0})

    async def _run_one(self, job: ActiveJob, fetch_next: bool, task: asyncio.Task[None]) -> ActiveJob | None:
        """Run and record one job in `task` (the slot's), inside its hooks; returns the job fetch-next handed over,
        if any."""
        now = time.monotonic()
        lock_ms = self.config.lock_ms
        if not lock_is_fresh(job, lock_ms, now) and not await lock_still_ours(self.scripts, job, lock_ms, now):
            self._forget(job)  # someone else's now: stopped or stalled past its lock before it could start
            return None
        job.task = task
        self.active[job.job_id] = job
        hooks = self.hooks
        start = AttemptStart(job.ctx.job, job.fields, job.wait_s(self.now_ms())) if hooks.watch_starts else None
        began = time.monotonic()
        outcome, error, next_job = Outcome.LOST, None, None
        logging_as = current_job.set(job.ctx.job)  # lines logged during the attempt carry the job's fields
        try:
            with hooks.attempt(start):
                outcome, error, next_job = await self._attempt(job, fetch_next, began)
        except asyncio.CancelledError:
            if not job.handed_back:
                raise
            task.uncancel()
        except Exception as exc:
            self._not_recorded(job, exc)
        finally:
            current_job.reset(logging_as)
            self._forget(job)
            self.processed += 1
        if outcome is not Outcome.LOST and hooks.watch_ends:
            hooks.attempt_ended(AttemptEnd(job.ctx.job, outcome, time.monotonic() - began, error))
        return next_job

    async def _attempt(
        self, job: ActiveJob, fetch_next: bool, began: float
    ) -> tuple[Outcome, BaseException | None, ActiveJob | None]:
        """Run the handler, pass the slot on to a prefetched job if one is ready (setting `job.passed_slot`),
        and record the outcome, fetching the next job in the same call when that pays."""
        result, error = await execute(self.env, job)
        await job.ctx.close()
        self.prefetch.ran(time.monotonic() - began)
        job.finishing = True
        job.passed_slot = self.prefetch.pass_slot()
        fetch = self.prefetch.fetches_next(job.passed_slot, fetch_next)
        sent = time.monotonic()
        try:
            outcome, fetched = await record(self.env, job, result, error, fetch)
        finally:
            if fetch and job.passed_slot:
                self.prefetch.refilled()
        return outcome, error, None if fetched is None else self._hold(fetched, job.token, sent)

    def _not_recorded(self, job: ActiveJob, exc: Exception) -> None:
        """The attempt's outcome could not be stored: the job stays active under a lock that lapses, and the
        stalled check requeues it. A bug, or a script that errored on the job's hash: this slot keeps serving."""
        if isinstance(exc, ScriptError):
            log.warning("job %s of %s lost before it finished: %s", job.job_id, self.queue.name, exc,
                        extra=job.log_fields)  # fmt: skip
        elif isinstance(exc, CONNECTION_FAILURES):
            log.error("job %s of %s: Redis unavailable at finish (%s); the stalled check will requeue it",
                      job.job_id, self.queue.name, exc, extra=job.log_fields)  # fmt: skip
        else:
            log.error("job %s of %s: its outcome could not be recorded", job.job_id, self.queue.name,
                      exc_info=exc, extra=job.log_fields)  # fmt: skip

    async def give_back(self, job: ActiveJob) -> None:
        """Return a job that was never started to waiting (shutting down), without counting an attempt."""
        self._forget(job)
        try:
            await self.scripts.hand_back(job.job_id, job.token)
        except (ScriptError, *CONNECTION_FAILURES) as exc:
            log.warning("could not hand back job %s (%s); the stalled check will requeue it", job.job_id, exc)

    def _forget(self, job: ActiveJob) -> None:
        """Stop tracking `job` (its lock is no longer renewed). A job of the same id taken again since, under a
        new token (after this process was stopped past the lock), stays."""
        if self.active.get(job.job_id) is job:
            del self.active[job.job_id]

    # --- control from the worker -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> bool:
        """Ask a running job to stop; it fails as cancelled. False if this process does not run it."""
        job = self.active.get(job_id)
        if job is None:
            return False
        if job.finishing:  # too late: the handler has returned and its outcome is being stored
            return True
        job.ctx.cancel_requested = True
        job.ctx.cancelled.set()
        if job.task is not None:  # else prefetched: it fails as cancelled when it starts
            job.task.cancel()
        return True

    def in_threads(self) -> list[ActiveJob]:
        """Jobs whose sync handler still runs in a thread (it cannot be interrupted)."""
        return [job for job in self.active.values() if job.ctx.in_thread and job.task is not None]

    def abandon(self, jobs: list[ActiveJob]) -> None:
        """Stop waiting for these jobs' threads: their locks are no longer renewed, nothing is recorded for
        them here, and the stalled-job check requeues them once their locks lapse."""
        for job in jobs:
            job.handed_back = True  # its task ends quietly
            self._forget(job)
            if job.task is not None:
                job.task.cancel()

    def holds(self, job_id: str, token: str) -> bool:
        """True while this runner runs (or has prefetched) the job under that lock token and has not begun to
        record its outcome: a lock deleted by that recording is no loss."""
        job = self.active.get(job_id)
        return job is not None and job.token == token and not job.finishing

    async def hand_back(self) -> int:
        """Return every still-running job to waiting without counting an attempt (end of a shutdown grace
        period), and every prefetched one. Returns how many were handed back.

        A sync handler running in a thread is not handed back: the thread cannot be stopped, and the job would
        run in two places at once. Its job stays here, its lock renewed, until the thread returns (see
        `in_threads`)."""
        await self.prefetch.drop()
        # Finishing ones are being stored.
        jobs = [job for job in self.active.values() if not job.finishing and not job.ctx.in_thread]
        for job in jobs:
            job.handed_back = True
            job.ctx.cancelled.set()
            if job.task is not None:
                job.task.cancel()
            else:
                del self.active[job.job_id]  # prefetched: never started
        for job in jobs:
            try:
                await self.scripts.hand_back(job.job_id, job.token)
            except (ScriptError, *CONNECTION_FAILURES) as exc:
                log.warning("could not hand back job %s (%s); the stalled check will requeue it", job.job_id, exc)
        return len(jobs)
