"""Repeating background tasks with nothing but delayed jobs, as in the design (`delay: 86400000`).

A scheduled task carries `every_ms` in its payload. When it has run (whatever the outcome), it adds its next
run, delayed by `every_ms`, under an id derived from its own id: a retried or duplicated run adds the same
next job, which BullMQ turns into a no-op, so the chain never forks. `ensure_scheduled` starts a chain for
every task that has no pending run (safe to call on every start-up).
"""

from __future__ import annotations

import hashlib
from typing import Any

from conveyor.app import Conveyor
from conveyor.queue.job import JobState

QUEUE = "background"
SCHEDULED_TYPES = ("cleanup-temp-files", "optimize-index", "remove-old-jobs")
PENDING_PAGE = 1000


def next_run_id(job_type: str, current_id: str) -> str:
    """The id of the run that follows job `current_id` (the same however often it is computed)."""
    digest = hashlib.sha1(current_id.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{job_type}-next-{digest}"


async def schedule_next(app: Conveyor, job_type: str, data: dict[str, Any], current_id: str, every_ms: int) -> str:
    """Add the next run of a repeating task, `every_ms` from now; returns its id."""
    return await app.add(QUEUE, job_type, data, delay_ms=every_ms, job_id=next_run_id(job_type, current_id))


async def pending_types(app: Conveyor) -> set[str]:
    """The task types that have a delayed or waiting run on the background queue."""
    queue = app.queue(QUEUE)
    found: set[str] = set()
    for state in (JobState.DELAYED, JobState.WAITING):
        start = 0
        while jobs := await queue.jobs(state, start, PENDING_PAGE):
            found.update(job.type for job in jobs)
            start += len(jobs)
    return found


async def ensure_scheduled(
    app: Conveyor, every_ms: int, payloads: dict[str, dict[str, Any]] | None = None
) -> list[str]:
    """Schedule the first run (in `every_ms`) of each maintenance task that has no pending run; returns the ids
    added. `payloads` may give a task's payload (`every_ms` is set on it)."""
    pending = await pending_types(app)
    added = []
    for job_type in SCHEDULED_TYPES:
        if job_type in pending:
            continue
        data = {**(payloads or {}).get(job_type, {}), "every_ms": every_ms}
        added.append(await app.add(QUEUE, job_type, data, delay_ms=every_ms))
    return added
