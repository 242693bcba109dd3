"""The worker hook that counts jobs: outcomes, wait and run time, stalled jobs.

Hooks run on the event loop and must not block, so counts gather in memory and a flush, at most
`flush_s` later, adds them to Redis in one MULTI/EXEC. A failed write keeps the counts for the next try. The
same events also feed the process's own metrics (`ProcessMetrics`), served on a worker's `--metrics-port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.app.conveyor import NotConnectedError
from conveyor.observability.process import ProcessMetrics
from conveyor.observability.store import MetricDeltas, MetricsStore
from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import QueueKeys
from conveyor.worker.hooks import AttemptEnd, AttemptStart, WorkerHook

log = logging.getLogger(__name__)

OUTCOME_COUNTERS = {"completed": "completed", "retried": "retried", "failed": "failed"}
RETRY_CAP_S = 5.0
_UNCOUNTED: AbstractContextManager[None] = contextlib.nullcontext()
UNKNOWN_TYPE = ""  # a stalled job removed before its type could be read


class MetricsRecorder(WorkerHook):
    """Counts every attempt's outcome, wait and run time, and stalled jobs, into Redis and this process."""

    def __init__(
        self, store: MetricsStore, prefix: str, flush_s: float = 0.2, process: ProcessMetrics | None = None
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.flush_s = flush_s
        self.process = process
        self._pending = MetricDeltas()
        self._stalled: list[tuple[str, str]] = []  # (queue, job id), typed at flush time
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._failures = 0
        self._parked = False  # the last flush found the app closed

    # --- hook -------------------------------------------------------------------------------------------

    def attempt_started(self, start: AttemptStart) -> None:
        """Record the wait time of the attempt."""
        self._pending.observe("wait", start.job.queue, start.job.type, start.wait_s)
        self._schedule()

    def around_attempt(self, start: AttemptStart) -> AbstractContextManager[None]:
        """Count the attempt as active in this process while it runs."""
        return _UNCOUNTED if self.process is None else self.process.active(start.job.queue)

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Count the outcome and record the run time."""
        counter = OUTCOME_COUNTERS.get(end.outcome)
        if counter is None:
            return
        self._pending.count(counter, end.job.queue, end.job.type)
        if counter == "failed":  # a final failure: every worker's dead-letter keeper copies it to the DLQ
            self._pending.count("dead_lettered", end.job.queue, end.job.type)
        self._pending.observe("run", end.job.queue, end.job.type, end.run_s)
        if self.process is not None:
            self.process.attempt_ended(end)
        self._schedule()

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Remember the requeued jobs; their types are read when the counts are written."""
        self._stalled.extend((queue, job_id) for job_id in job_ids)
        self._schedule()

    # --- flushing ---------------------------------------------------------------------------------------

    def _schedule(self, delay_s: float | None = None) -> None:
        if self._timer is not None or self._flushing is not None:
            return  # a flush is due already; a running one reschedules when it ends
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.flush_s if delay_s is None else delay_s, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._flushing = asyncio.get_running_loop().create_task(self.flush(), name="conveyor-metrics-flush")
        self._flushing.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing = None
        if task.cancelled():
            return
        if self._parked:
            self._parked = False  # the next count of a connected app schedules the next try
            return
        if self._pending or self._stalled:
            backoff = min(self.flush_s * 2**self._failures, RETRY_CAP_S) if self._failures else None
            self._schedule(backoff)

    async def flush(self) -> None:
        """Write every count gathered so far to Redis now (kept for the next try if Redis is unavailable)."""
        deltas, self._pending = self._pending, MetricDeltas()
        stalled, self._stalled = self._stalled, []
        try:
            if stalled:
                await self._count_stalled(deltas, stalled)
                stalled = []
            if deltas:
                await self.store.write(deltas)
            self._failures = 0
        except (RedisError, OSError) as exc:
            self._failures += 1
            if self._failures == 1:
                log.warning("could not write job metrics to Redis (%s); keeping them for the next try", exc)
            self._keep(deltas, stalled)
        except NotConnectedError:
            # The app was closed with counts still held (before `Instrumentation.aclose`): no retry timer runs on
            # for a closed app; the counts are written by the flush that its next count, once connected, brings.
            log.debug("job metrics held: the app is not connected")
            self._parked = True
            self._keep(deltas, stalled)

    def _keep(self, deltas: MetricDeltas, stalled: list[tuple[str, str]]) -> None:
        deltas.merge(self._pending)
        self._pending = deltas
        self._stalled = stalled + self._stalled

    async def _count_stalled(self, deltas: MetricDeltas, stalled: list[tuple[str, str]]) -> None:
        client: Redis = self.store.client
        pipe = client.pipeline(transaction=False)
        for queue, job_id in stalled:
            pipe.hget(QueueKeys(self.prefix, queue, is_cluster(client)).job(job_id), "name")
        for (queue, _), job_type in zip(stalled, await pipe.execute(), strict=True):
            deltas.count("stalled", queue, job_type or UNKNOWN_TYPE)

    async def aclose(self) -> None:
        """Stop the timer and write what is left (call when the worker has stopped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush()
