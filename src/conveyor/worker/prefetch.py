"""Prefetching and slot passing: a few jobs taken ahead of a free slot while the queue has a backlog of short jobs.

A prefetched job is already moved to active (and locked) but not yet started. A slot whose handler returns
starts a prefetched job at once (it passes its slot on) and records the finished one meanwhile, so no slot sits
idle through the recording round trip; that round trip's fetch-next refills the buffer. A slot that keeps its
slot (nothing was ready) fetches its own next job, and grows the buffer by one prefetch alongside.

Prefetching stops while handlers take longer than `PREFETCH_MAX_JOB_S` (a prefetched job delays a
higher-priority job that arrives later by about one handler run), while the queue has no backlog, and on
shutdown. A prefetched job starts only if its lock is still this worker's (`conveyor.worker.fencing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from redis.exceptions import ResponseError

from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.script_errors import ScriptError
from conveyor.worker.attempt import ActiveJob
from conveyor.worker.fetch_plan import FetchPlan

log = logging.getLogger(__name__)

PREFETCH_MAX_JOB_S = 0.05  # prefetch only while handlers take at most this long: a prefetched job delays a
# higher-priority job that arrives later by about one handler run


class SlotOwner(Protocol):
    """The runner, as the prefetcher sees it: it starts jobs in slots and takes jobs from Redis."""

    def start_job(self, job: ActiveJob) -> None:
        """Run `job` in a new slot task, in the slot the caller holds."""

    def start_job_in_free_slot(self, job: ActiveJob) -> None:
        """Run `job` in a new slot task, in a slot the caller just took from `slots`."""

    async def give_back(self, job: ActiveJob) -> None:
        """Return a job that was never started to waiting."""

    async def take_ahead(self) -> ActiveJob | None:
        """Move one job to active and hold it (None: no job waits). Raises what the fetch ran into."""


class Prefetcher:
    """The jobs taken ahead of a free slot, and the slot passing that starts them."""

    def __init__(self, queue: str, plan: FetchPlan, owner: SlotOwner, slots: asyncio.Semaphore) -> None:
        self.queue = queue
        self.size = 0  # jobs taken ahead at most; set by the runner when it starts (0: no prefetching)
        self._plan = plan  # whether the queue has a backlog; whether the runner is closing
        self._owner = owner
        self._slots = slots
        self._ready: deque[ActiveJob] = deque()  # active and locked in Redis, not started yet
        self._incoming = 0  # prefetches in flight, and fetch-nexts that refill the buffer
        self._job_s = 0.0  # recent handler run time (moving average)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def job_ids(self) -> list[str]:
        """Ids of the jobs taken ahead of a free slot."""
        return [job.job_id for job in self._ready]

    def ran(self, seconds: float) -> None:
        """A handler ran this long (the moving average decides whether prefetching pays)."""
        self._job_s = 0.8 * self._job_s + 0.2 * seconds

    def _limit(self) -> int:
        return 0 if self._plan.closing or self._job_s > PREFETCH_MAX_JOB_S else self.size

    def _room(self) -> int:
        return self._limit() - len(self._ready) - self._incoming

    def next_ready(self) -> ActiveJob | None:
        """A prefetched job for the caller's slot, if one is waiting (never while closing)."""
        return self._ready.popleft() if self._ready and not self._plan.closing else None

    def pass_slot(self) -> bool:
        """Start a prefetched job in the calling task's slot, if one is waiting. True if the slot was passed."""
        job = self.next_ready()
        if job is None:
            return False
        self._owner.start_job(job)
        return True

    def fetches_next(self, passed_slot: bool, fetch_next: bool) -> bool:
        """Whether recording a finished job fetches the next one. A slot passed on refills the buffer, if there
        is room (the fetched job then counts as incoming until `refilled`); a slot kept fetches its own next
        job, and grows the buffer by one prefetch while there is a backlog."""
        if not fetch_next or self._plan.closing:
            return False
        if not passed_slot:
            self._grow()
            return True
        if self._room() <= 0:
            return False
        self._incoming += 1
        return True

    def refilled(self) -> None:
        """The recording that refilled the buffer (`fetches_next` with a passed slot) returned."""
        self._incoming -= 1

    async def offer(self, job: ActiveJob) -> None:
        """A job taken ahead: start it if a slot is free, else keep it until one is."""
        if self._plan.closing:
            await self._owner.give_back(job)
        elif not self._slots.locked():
            await self._slots.acquire()  # free: returns at once
            self._owner.start_job_in_free_slot(job)
        else:
            self._ready.append(job)

    def _grow(self) -> None:
        if not self._plan.backlog or self._room() <= 0:
            return
        self._incoming += 1
        task = asyncio.create_task(self._prefetch_one(), name=f"prefetch:{self.queue}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prefetch_one(self) -> None:
        try:
            job = await self._owner.take_ahead()
        except (ScriptError, ResponseError, *CONNECTION_FAILURES) as exc:
            log.warning("queue %s: prefetch failed (%s)", self.queue, exc)
            self._plan.ran_dry()  # no more prefetching until a fetch finds a backlog again (not one per job)
            return
        finally:
            self._incoming -= 1
        if job is not None:
            await self.offer(job)
        else:
            self._plan.ran_dry()

    async def drop(self) -> None:
        """Let prefetches in flight land (up to 5 s), then forget the ready jobs: the caller hands them back."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._ready.clear()
