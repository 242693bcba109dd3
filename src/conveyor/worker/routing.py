"""Job types and workers: a job goes to a worker that has a handler for its type.

BullMQ has no routing by job type: any worker of a queue takes the queue's next job. Workers therefore
advertise, with their heartbeat, the job types they handle per queue (`WorkerInfo.job_types`). A worker that
takes a job whose type it lacks puts it back, without counting an attempt:

- when another live worker advertises the type, for a short while (`FIRST_DELAY_MS`, doubling with each
  refusal of that job up to `ADVERTISED_MAX_DELAY_MS`), so that worker gets it and this one does not take it
  again at once (a job that went straight back to waiting would be this worker's next fetch: a hot loop). The
  cap is short because the worker with the handler may be idle meanwhile: 10 jobs of 0.5 s for a one-slot
  worker, drawn by an idle other worker, took 5.4 s with a 250 ms cap and 9.1 s with a 1 s cap;
- when none does, for longer (up to `UNADVERTISED_MAX_DELAY_MS` or a tenth of the grace period), until
  `grace_s` after the first refusal (a worker with the handler may be starting): then the job fails with
  `UnknownJobTypeError`, naming its type and queue.

The live workers' advertisements are read from Redis at most once per `SNAPSHOT_MS`, so a worker that keeps
drawing jobs of a type it lacks costs Redis one small read a second for it, not one per job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from conveyor.queue.job import REFUSALS_FIELD, REFUSED_AT_FIELD
from conveyor.worker.errors import JobRefusedError, UnknownJobTypeError
from conveyor.worker.registry import WorkerInfo, advertised_types

log = logging.getLogger(__name__)

FIRST_DELAY_MS = 50  # the first refusal: back almost at once, for the worker that has the handler
ADVERTISED_MAX_DELAY_MS = 250  # a job another worker handles is never put off longer than this
UNADVERTISED_MAX_DELAY_MS = 1000  # while no worker advertises the type: at least this often, or grace / 10
SNAPSHOT_MS = 1000  # how stale the advertised job types may be


def _integer(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


class JobTypeRouting:
    """What a worker does with a job it has no handler for: put it back for a worker that has one, or fail it."""

    def __init__(self, live_workers: Callable[[], Awaitable[list[WorkerInfo]]], worker_id: str, grace_s: float):
        self._live_workers = live_workers
        self.worker_id = worker_id
        self.grace_ms = int(grace_s * 1000)
        self._advertised: dict[str, set[str]] = {}
        self._read_at_ms: int | None = None

    async def advertised_elsewhere(self, queue: str, job_type: str, now_ms: int) -> bool:
        """True when another live worker advertises `job_type` on `queue` (as of at most `SNAPSHOT_MS` ago)."""
        if self._read_at_ms is None or not 0 <= now_ms - self._read_at_ms < SNAPSHOT_MS:
            self._advertised = advertised_types(await self._live_workers(), besides=self.worker_id)
            self._read_at_ms = now_ms
        return job_type in self._advertised.get(queue, set())

    async def refuse(self, queue: str, job_type: str, fields: dict[str, str], now_ms: int) -> JobRefusedError:
        """The refusal of a job this worker has no handler for, to be raised; or, when no live worker has
        advertised its type since `grace_s` after its first refusal, raises `UnknownJobTypeError`."""
        refused_at = fields.get(REFUSED_AT_FIELD)
        first = _integer(refused_at) if refused_at else now_ms
        refusals = _integer(fields.get(REFUSALS_FIELD)) + 1
        elsewhere = await self.advertised_elsewhere(queue, job_type, now_ms)
        left_ms = first + self.grace_ms - now_ms
        if not elsewhere and left_ms <= 0:
            raise UnknownJobTypeError(
                f"no handler for job type {job_type!r} on queue {queue!r}: no live worker advertised it for "
                f"{self.grace_ms / 1000:g} s (CONVEYOR_UNKNOWN_TYPE_GRACE_S). Start a worker whose app registers "
                "it, or check the type's spelling; then retry the job."
            )
        delay = FIRST_DELAY_MS << min(refusals - 1, 16)
        delay = min(delay, ADVERTISED_MAX_DELAY_MS) if elsewhere else min(delay, self._unadvertised_cap(), left_ms)
        if refusals == 1 and not elsewhere:
            log.warning(
                "no live worker handles job type %r of queue %r: the job fails in %g s unless one starts",
                job_type, queue, left_ms / 1000,
            )  # fmt: skip
        updates = {REFUSED_AT_FIELD: str(first), REFUSALS_FIELD: str(refusals)}
        return JobRefusedError(delay, updates, f"no handler for job type {job_type!r} on queue {queue!r} here")

    def _unadvertised_cap(self) -> int:
        # While no worker advertises the type, look again about ten times in the grace period (at least every 1 s).
        return max(UNADVERTISED_MAX_DELAY_MS, self.grace_ms // 10)
