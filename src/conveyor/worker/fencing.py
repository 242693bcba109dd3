"""Fencing a job taken ahead of its start: it runs only while its lock is still this worker's.

Redis locks a job to a worker when it takes the job, which can be well before the worker starts it: the fetch
rides behind the fetcher's blocking wait (Redis takes a job the moment one arrives, even while the process is
stopped: SIGSTOP, an event loop blocked by a handler, a paused VM), a prefetched job waits for a free slot, or
the process stalls between sending a fetch and reading its reply. If that lasted past the lock, the stalled
check of another worker has requeued the job, and another worker may be running it now.

So before a job starts, its lock is checked. A lock set (by the fetch or by a renewal) less than half a lock
duration ago, as far as this process's monotonic clock tells, is still ours with at least half its time left:
the job starts at once, at no cost. An older one is renewed first with BullMQ's `extendLocks`, which renews only
under our token: renewed, the job starts (and the lock renewer keeps it); refused, the job is someone else's
now, and this worker drops it without touching it in Redis. A job whose lock lapsed unnoticed is requeued by
the stalled check, which re-adds the wake-up marker, so an idle worker takes it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.scripts import QueueScripts

if TYPE_CHECKING:
    from conveyor.worker.active import ActiveJob

log = logging.getLogger(__name__)

FRESH_FRACTION = 0.5  # of the lock duration: a lock set more recently than this starts its job without a check


def lock_is_fresh(job: ActiveJob, lock_ms: int, now: float) -> bool:
    """True if `job`'s lock was set recently enough to start it without a check (`now`: monotonic seconds)."""
    return now - job.lock_since < lock_ms * FRESH_FRACTION / 1000


async def lock_still_ours(scripts: QueueScripts, job: ActiveJob, lock_ms: int, now: float) -> bool:
    """True if `job`, whose lock is not fresh (`lock_is_fresh`, checked first without a round trip), may start:
    its lock was just renewed under its token. `now` is monotonic seconds (`time.monotonic()`), the clock
    `job.lock_since` is on."""
    try:
        lost = await scripts.extend_locks([job.job_id], [job.token], lock_ms)
    except CONNECTION_FAILURES as exc:
        log.warning(
            "job %s: could not check its lock before starting it (%s); not running it here",
            job.job_id, exc, extra=job.log_fields,
        )  # fmt: skip
        return False  # unverified: the stalled check requeues it if the lock lapses
    if lost:
        log.warning(
            "job %s of %s: its lock lapsed before it started (this process was stopped or stalled for %.1f s); "
            "another worker has it now, so it does not run here",
            job.job_id, job.ctx.job.queue, now - job.lock_since,
            extra=job.log_fields,
        )  # fmt: skip
        return False
    job.lock_since = now
    return True
