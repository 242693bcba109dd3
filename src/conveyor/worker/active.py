"""A job this worker process holds the lock of: taken by a fetch, prefetched, running, or being recorded."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from conveyor.queue.job import QUEUED_AT_FIELD
from conveyor.redis.scripts import FetchedJob, QueueScripts
from conveyor.worker.context import JobContext, JobInfo
from conveyor.worker.fetched import CheckedJob, check_fields


@dataclass
class ActiveJob:
    """A job this process holds the lock of."""

    job_id: str
    token: str
    fields: dict[str, str]
    opts: dict[str, Any]
    ctx: JobContext
    checked: CheckedJob
    task: asyncio.Task[Any] | None = None  # the slot task running it; None while prefetched
    handed_back: bool = False
    finishing: bool = False  # the handler has returned; its outcome is being recorded
    passed_slot: bool = False  # its slot went to a prefetched job while this one was being recorded
    lock_since: float = 0.0  # monotonic time no later than when its lock was last set for a full lock duration
    # Seconds the attempt may run (None: no limit), and whether that limit is the job's deadline (else its
    # timeout): set before the handler runs (`conveyor.worker.policies.DeadlinePolicy`).
    time_limit: tuple[float | None, bool] = (None, False)

    @classmethod
    def from_fetched(cls, fetched: FetchedJob, token: str, queue: str, worker: str, scripts: QueueScripts) -> ActiveJob:
        """Wrap a job just moved to active (its hash came back with the fetch); `task` is set when it starts.
        Never raises: a malformed hash is noted in `checked.problem`, and the job fails when it starts."""
        assert fetched.job_id is not None
        checked = check_fields(fetched.fields, fetched.error)
        info = JobInfo(
            id=fetched.job_id,
            queue=queue,
            type=checked.name,
            attempt=checked.attempts_made + 1,
            max_attempts=checked.max_attempts,
            worker=worker,
        )
        ctx = JobContext(info, scripts, asyncio.get_running_loop())
        return cls(fetched.job_id, token, fetched.fields, checked.opts, ctx, checked)

    @property
    def log_fields(self) -> dict[str, Any]:
        """`extra=` fields naming this job, for lines about it logged outside its attempt."""
        info = self.ctx.job
        return {"job_id": info.id, "queue": info.queue, "job_type": info.type, "attempt": info.attempt}

    def wait_s(self, now_ms: int) -> float:
        """Seconds from due time to start. Due time: when a retry became due, else creation plus the requested
        delay (BullMQ resets the hash's `delay` field on promotion, so the original comes from the options)."""
        fields = self.fields
        try:
            queued = int(fields.get(QUEUED_AT_FIELD) or 0) or int(fields.get("timestamp") or 0) + int(
                self.opts.get("delay") or 0
            )
            return max(0.0, (int(fields.get("processedOn") or now_ms) - queued) / 1000)
        except ValueError:  # a malformed hash: the job fails as such when it starts
            return 0.0
