"""Removing finished jobs older than a cutoff, through the queue's own API."""

from __future__ import annotations

import logging

from conveyor.queue.errors import JobNotFoundError, JobStateError
from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue

log = logging.getLogger(__name__)

FINISHED_STATES = (JobState.COMPLETED, JobState.FAILED)
PAGE = 200


async def remove_finished_jobs(queue: Queue, state: JobState, *, older_than_ms: int, now_ms: int) -> int:
    """Remove the jobs in `state` (completed or failed) that finished more than `older_than_ms` before
    `now_ms`; returns how many were removed.

    Finished jobs are listed newest first, so the old ones are at the end: pages of recent jobs are skipped,
    and from the first old job on every job is removed.
    """
    if state not in FINISHED_STATES:
        raise ValueError(f"only finished jobs can be removed by age, not {state.value!r} ones")
    cutoff_ms = now_ms - older_than_ms
    removed, start = 0, 0
    while jobs := await queue.jobs(state, start, PAGE):
        kept = 0
        for job in jobs:
            finished = job.finished_at.timestamp() * 1000 if job.finished_at else now_ms
            if finished >= cutoff_ms:
                kept += 1
                continue
            try:
                await queue.remove(job.id)
                removed += 1
            except (JobNotFoundError, JobStateError):  # removed or retried meanwhile
                kept += 1
        start += kept
    if removed:
        log.info("removed %d %s jobs of %s older than %d ms", removed, state.value, queue.name, older_than_ms)
    return removed
