"""The runtime of one queue inside a worker process: one fetcher feeding a fixed number of job slots.

A single fetch loop per queue (not one per slot) means an idle queue costs one blocked connection, and a
new job wakes exactly one fetcher per process instead of every idle slot (no thundering herd).

While the queue has a backlog of short jobs, a few jobs are prefetched: already moved to active (and
locked) but not yet started. A slot whose handler returns starts a prefetched job at once and records the
finished one meanwhile, so no slot sits idle through the recording round trip; that round trip's fetch-next
refills the buffer.

When the fetcher waits for new work and has nothing else to decide, it sends `moveToActive` right behind its
blocking wait, in one write: Redis takes the job for it the moment one arrives, a round trip sooner.

A job taken ahead of its start (behind a wait, prefetched, or by a fetch whose reply came late) starts only if
its lock is still this worker's (`conveyor.worker.fencing`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from collections import deque
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
from conveyor.worker.batching import Batchers
from conveyor.worker.fencing import lock_still_ours
from conveyor.worker.fetched import taken_despite
from conveyor.worker.handler import HandlerLookup
from conveyor.worker.hooks import AttemptEnd, AttemptStart, HookSet, Outcome
from conveyor.worker.limits import Admission
from conveyor.worker.policies import Policies
from conveyor.worker.routing import JobTypeRouting
from conveyor.worker.waiting import MarkerWait, warn_if_failed

log = logging.getLogger(__name__)

Taken = tuple[FetchedJob, str, float]  # a job moved to active, its lock token, when the fetch was sent (monotonic)

PREFETCH_MAX_JOB_S = 0.05  # prefetch only while handlers take at most this long: a prefetched job delays a
# higher-priority job that arrives later by about one handler run


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
    prefetch: int = 0  # jobs moved to active ahead of a free slot, at most (see the module docstring)


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
        self._closing = False
        self._wake = asyncio.Event()
        self._block_until_ms = 0
        self._check_now = True  # look for jobs at once on start
        self._just_fetched = False
        self._backlog = True  # finishing jobs fetch the next one while the queue has a backlog
        self._slot_tasks: set[asyncio.Task[None]] = set()
        # Slot tasks start from the runner's context, not from the attempt that passed them a slot: a slot
        # started inside an attempt would otherwise log every later line with that attempt's job fields.
        self._slot_context = contextvars.copy_context()
        self._ready: deque[ActiveJob] = deque()  # prefetched: active and locked in Redis, not started yet
        self._incoming = 0  # prefetches in flight
        self._job_s = 0.0  # recent handler run time (moving average)
        self._prefetching: set[asyncio.Task[None]] = set()
        policies = Policies.standard(queue.client, queue.conveyor_keys, config.group_limits)
        # The attempt reads the time through the runner's `now_ms`, looked up at each call: tests replace it.
        self.env = AttemptEnv(
            queue, queue.scripts, lookup, executor, config.worker_name, config.lock_ms, policies, Batchers(executor),
            routing, lambda: self.now_ms(),
        )  # fmt: skip

    @property
    def prefetched(self) -> list[str]:
        """Ids of the jobs taken ahead of a free slot (active and locked in Redis, not started yet)."""
        return [job.job_id for job in self._ready]

    def now_ms(self) -> int:
        """The runner's clock in milliseconds (injectable for tests)."""
        return int(self._clock() * 1000)

    # --- fetching --------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Fetch and start jobs until `stop_fetching` is called."""
        try:
            while not self._closing:
                await self._slots.acquire()
                self._busy_slots += 1
                if self._ready and not self._closing:  # a prefetched job came in while no slot was free
                    self._start(self._ready.popleft())
                    continue
                fetched = await self._next_job()
                if fetched is None:
                    self._release_slot()
                    break
                self._start(self._hold(*fetched))
                await asyncio.sleep(0)  # let the job start before this loop prepares its next wait
        finally:
            self.waits.close()

    def _release_slot(self) -> None:
        self._busy_slots -= 1
        self._slots.release()
        if self.admission.reserved_slots:
            self._check_now = True
            self.waits.nudge()  # a freed slot may be one the fetcher was holding back for priority jobs

    def stop_fetching(self) -> None:
        """Start no new jobs. Interrupts only the blocking wait, never a script call in flight, so no job is
        moved to active without being started."""
        self._closing = True
        self._wake.set()

    async def _next_job(self) -> Taken | None:
        failures = 0
        while not self._closing:
            try:
                fetched = await self._try_fetch()
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

    async def _try_fetch(self) -> Taken | None:
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
        if self._fetches_behind_wait():
            return await self._wait_and_fetch(now)
        await self._wait_for_marker()
        return None

    async def _fetch(self, now: int) -> Taken | None:
        verdict = await self.admission.verdict(now, self.config.concurrency - self._busy_slots + 1)
        if verdict is None:
            self._block_until_ms = 0  # wait for a wake-up: new work or a freed slot (which looks again)
            return None
        if verdict:
            self._block_until_ms = now + verdict  # this worker's own rate limit
            return None
        token = uuid.uuid4().hex  # the lock value: every later state change must present it
        sent = time.monotonic()
        fetched = await self._take(token, now)
        self._just_fetched = bool(fetched.job_id)
        if fetched.job_id:
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
        if fetched.rate_limit_delay_ms:  # the queue-wide rate limit: look again when its window ends
            self._block_until_ms = now + fetched.rate_limit_delay_ms
        else:
            self._block_until_ms = fetched.next_delayed_ms  # known only when no job came back

    def _fetches_behind_wait(self) -> bool:
        """Whether the next wait may carry the fetch (`_wait_and_fetch`): not right after a fetch (the marker
        is then most likely the one BullMQ's script re-adds: it is probed first), and only while the fetcher
        has nothing to decide (no delayed job to wait for, no rate limit of its own, no priority lanes, no
        queue-wide concurrency)."""
        return (
            self.waits.carries_fetch
            and not self._just_fetched
            and not self._block_until_ms
            and not self.admission.restricts_fetch_next
            and not self.config.global_concurrency
        )

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
            self._check_now = True  # Redis forgot the script: the usual fetch loads it
            return None
        except ResponseError as exc:
            fetched = await taken_despite(self.scripts, token, exc)
        if fetched.job_id is None:  # a timeout, a delayed job's marker, or another worker was quicker
            self._came_back_empty(fetched, self.now_ms())
            return None
        self._just_fetched = True
        if self._closing:
            await self._give_back(self._hold(fetched, token, sent))
            return None
        started = self.now_ms()
        fetched.fields["processedOn"] = str(started)
        restamping = self.scripts.restamp_started(fetched.job_id, started)
        restamping.add_done_callback(warn_if_failed("record a job's start time"))
        return fetched, token, sent

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
        due_in_s = max(0.0, (self._block_until_ms - self.now_ms()) / 1000) if self._block_until_ms else None
        score = await self.waits.pop(self._wake, nudgeable=self.admission.reserved_slots > 0, due_in_s=due_in_s)
        if score is None or score == 0:
            self._check_now = True  # new work; or a timeout or nudge: look again (a safety net for lost markers)
        else:  # a delayed job's marker: the time it is due
            self._block_until_ms = min(score, self._block_until_ms) if self._block_until_ms else score

    # --- running ---------------------------------------------------------------------------------------

    def _hold(self, fetched: FetchedJob, token: str, sent: float) -> ActiveJob:
        job = ActiveJob.from_fetched(fetched, token, self.queue.name, self.config.worker_name, self.scripts)
        job.lock_since = sent
        self.active[job.job_id] = job  # from now on its lock is renewed and it can be cancelled
        return job

    def _start(self, job: ActiveJob) -> None:
        """Run `job` in a new slot task; the caller has taken the slot."""
        task = asyncio.create_task(
            self._run_slot(job), name=f"slot:{self.queue.name}", context=self._slot_context.copy()
        )
        job.task = task  # from now on a shutdown waits for it (through its grace period), even before it runs
        self._slot_tasks.add(task)
        task.add_done_callback(self._slot_tasks.discard)

    async def _run_slot(self, job: ActiveJob) -> None:
        """Run jobs in one slot: the first one, then each next one handed over by fetch-next while the queue
        has a backlog (a trickling queue skips fetch-next: it would come back empty). Ends early, without
        freeing the slot, when the slot was passed on to a prefetched job."""
        fetch_next = self.config.global_concurrency or (self._backlog and not self.admission.restricts_fetch_next)
        current = job
        try:
            while True:  # the job this slot was started with runs even if a shutdown began meanwhile
                next_job = await self._run_one(current, fetch_next)
                if current.passed_slot:
                    if next_job is not None:
                        await self._offer(next_job)
                    return
                if next_job is None:  # nothing came back: a prefetched job, if any, before freeing the slot
                    if not self._ready or self._closing:
                        return
                    next_job = self._ready.popleft()
                current = next_job
                if self._closing:
                    await self._give_back(current)  # shutting down: a job fetch-next took is never started
                    return
        finally:
            if not current.passed_slot:
                self._release_slot()
                if self.config.global_concurrency:
                    # BullMQ wakes no one when a job of a queue at its global concurrency ends: wake the fetchers.
                    await self.queue.client.zadd(self.queue.keys.marker, {"0": 0})

    async def _run_one(self, job: ActiveJob, fetch_next: bool) -> ActiveJob | None:
        """Run and record one job; returns the job fetch-next handed over, if any. Sets `job.passed_slot` when a
        prefetched job took over the slot while this one was being recorded."""
        if not await lock_still_ours(self.scripts, job, self.config.lock_ms, time.monotonic()):
            self._forget(job)  # someone else's now: stopped or stalled past its lock before it could start
            return None
        job.task = asyncio.current_task()
        self.active[job.job_id] = job
        hooks = self.hooks
        start = AttemptStart(job.ctx.job, job.fields, job.wait_s(self.now_ms())) if hooks.watch_starts else None
        began = time.monotonic()
        outcome, error, fetched, sent = Outcome.LOST, None, None, 0.0
        try:
            with hooks.attempt(start):
                result, error = await execute(self.env, job)
                await job.ctx.close()
                self._job_s = 0.8 * self._job_s + 0.2 * (time.monotonic() - began)
                job.finishing = True
                job.passed_slot = self._pass_slot()
                # A slot passed on refills the buffer, if there is room; a slot kept fetches its own next job.
                refill = job.passed_slot and fetch_next and self._buffer_room() > 0
                if fetch_next and not job.passed_slot:
                    self._grow_buffer()
                fetch = fetch_next and not self._closing and (refill or not job.passed_slot)
                self._incoming += refill
                sent = time.monotonic()
                try:
                    outcome, fetched = await record(self.env, job, result, error, fetch)
                finally:
                    self._incoming -= refill
        except asyncio.CancelledError:
            if not job.handed_back:
                raise
            cast("asyncio.Task[None]", asyncio.current_task()).uncancel()
        except ScriptError as exc:
            log.warning("job %s of %s lost before it finished: %s", job.job_id, self.queue.name, exc,
                        extra=job.log_fields)  # fmt: skip
        except CONNECTION_FAILURES as exc:
            log.error("job %s of %s: Redis unavailable at finish (%s); the stalled check will requeue it",
                      job.job_id, self.queue.name, exc, extra=job.log_fields)  # fmt: skip
        except Exception:  # a bug or a script that errored on the job's hash: this slot keeps serving
            log.exception("job %s of %s: its outcome could not be recorded", job.job_id, self.queue.name,
                          extra=job.log_fields)  # fmt: skip
        finally:
            self._forget(job)
            self.processed += 1
        if outcome is not Outcome.LOST and hooks.watch_ends:
            hooks.attempt_ended(AttemptEnd(job.ctx.job, outcome, time.monotonic() - began, error))
        return self._hold(fetched, job.token, sent) if fetched is not None else None

    # --- prefetching ------------------------------------------------------------------------------------

    def _prefetch_limit(self) -> int:
        if (
            self._closing
            or self._job_s > PREFETCH_MAX_JOB_S
            or self.config.global_concurrency  # prefetched jobs would count against the queue-wide limit
            or self.admission.restricts_fetch_next  # rate limits and priority lanes decide at each fetch
            or self.config.concurrency < 2  # the fetcher holds a slot while it waits: none would be left
        ):
            return 0
        return self.config.prefetch

    def _buffer_room(self) -> int:
        return self._prefetch_limit() - len(self._ready) - self._incoming

    def _pass_slot(self) -> bool:
        """Start a prefetched job in the calling task's slot, if one is waiting. True if the slot was passed."""
        if not self._ready or self._closing:
            return False
        self._start(self._ready.popleft())
        return True

    async def _offer(self, job: ActiveJob) -> None:
        """A prefetched job: start it if a slot is free, else keep it until one is."""
        if self._closing:
            await self._give_back(job)
        elif not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            self._busy_slots += 1
            self._start(job)
        else:
            self._ready.append(job)

    def _grow_buffer(self) -> None:
        """While there is room and a backlog, prefetch one more job alongside this slot's own fetch-next."""
        if not self._backlog or self._buffer_room() <= 0:
            return
        self._incoming += 1
        task = asyncio.create_task(self._prefetch_one(), name=f"prefetch:{self.queue.name}")
        self._prefetching.add(task)
        task.add_done_callback(self._prefetching.discard)

    async def _prefetch_one(self) -> None:
        token = uuid.uuid4().hex
        sent = time.monotonic()
        try:
            fetched = await self._take(token, self.now_ms())
        except (ScriptError, ResponseError, *CONNECTION_FAILURES) as exc:
            log.warning("queue %s: prefetch failed (%s)", self.queue.name, exc)
            self._backlog = False  # no more prefetching until a fetch finds a backlog again (not one per job)
            return
        finally:
            self._incoming -= 1
        if fetched.job_id:
            await self._offer(self._hold(fetched, token, sent))
        else:
            self._backlog = False

    async def _give_back(self, job: ActiveJob) -> None:
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
        if self._prefetching:
            await asyncio.wait(self._prefetching, timeout=5)
        self._ready.clear()
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
