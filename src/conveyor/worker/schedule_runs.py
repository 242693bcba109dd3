"""A worker's part in job schedulers: taking the job of a scheduler's run adds the next run's job.

This is what a Node BullMQ worker does when it takes a job whose hash names a job scheduler (`rjk`), and it is
what keeps a schedule going in a mixed fleet: BullMQ's `updateJobScheduler` script adds the next run only for
the scheduler's current run, and only once, so whichever worker (Conveyor or Node) takes a run's job moves the
schedule on, and each tick runs once. A schedule with `catch_up="skip"` (stored in its `conveyor.spec`) does
not run a job taken more than `MISFIRE_GRACE_MS` after its tick (every worker was down): it completes at once.
Node workers ignore that policy and run such a job.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from redis.exceptions import RedisError

from conveyor.errors import ConveyorError
from conveyor.queue.queue import Queue
from conveyor.queue.schedule_records import next_run_ms, next_run_options, read_schedule
from conveyor.queue.schedule_spec import MISFIRE_GRACE_MS
from conveyor.redis.job_schedulers import JobSchedulerStore

log = logging.getLogger(__name__)

SCHEDULER_FIELD = "rjk"  # BullMQ's `repeatJobKey` in a job hash: the job scheduler the job is a run of

_stores: weakref.WeakKeyDictionary[Queue, JobSchedulerStore] = weakref.WeakKeyDictionary()


def _store(queue: Queue) -> JobSchedulerStore:
    store = _stores.get(queue)
    if store is None:
        store = _stores[queue] = JobSchedulerStore(queue.client, queue.keys)
    return store


def _run_ms(job_id: str, opts: dict[str, Any]) -> int | None:
    try:
        return int(opts.get("prevMillis") or job_id.rsplit(":", 1)[1])
    except (ValueError, IndexError):
        return None


async def run_taken(
    queue: Queue, job_id: str, fields: dict[str, str], opts: dict[str, Any], now_ms: int,
    grace_ms: int = MISFIRE_GRACE_MS,
) -> bool:  # fmt: skip
    """Add the next run of the job scheduler `job_id` is a run of (if any); returns False when this run is to be
    skipped (missed, with `catch_up="skip"`), True when its handler runs. Never raises: a schedule that cannot
    be moved on is logged and the job runs."""
    scheduler_id, run_ms = fields.get(SCHEDULER_FIELD), _run_ms(job_id, opts)
    if not scheduler_id or run_ms is None:
        return True
    store = _store(queue)
    try:
        stored = await store.get(scheduler_id)
        if stored is None:
            return True  # removed meanwhile: this run still runs, nothing comes next
        schedule = read_schedule(stored, queue.name)
        next_ms = next_run_ms(schedule, run_ms, now_ms)
        options = next_run_options(opts, schedule, next_ms, now_ms)
        await store.advance(scheduler_id, producer_job_id=job_id, next_ms=next_ms, job_opts=options, now_ms=now_ms)
    except (RedisError, OSError, ConveyorError, ValueError, TypeError) as exc:
        log.error("schedule %s of queue %s: could not add the run after %s (%s)", scheduler_id, queue.name, job_id, exc)
        return True
    taken_ms = min(now_ms, int(float(fields.get("processedOn") or now_ms)))  # not later for a job in a buffer
    if schedule.spec.catch_up == "skip" and taken_ms - run_ms > grace_ms:
        log.warning("schedule %s: skipped the missed run %d (catch_up=skip)", scheduler_id, run_ms)
        return False
    return True
