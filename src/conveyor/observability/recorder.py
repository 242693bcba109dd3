"""The worker hook that counts jobs: outcomes, wait and run time, stalled jobs.

Hooks run on the event loop and must not block, so every attempt only adds to this process's cumulative counts
(`ProcessMetrics`, also served on a worker's `--metrics-port`), and a flush, at most `flush_s` later, adds what
they gained since the last write to Redis in one MULTI/EXEC. A failed write leaves the last written counts as
they were, so the next flush sends its gain again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.app.conveyor import NotConnectedError
from conveyor.observability.process import ProcessMetrics
from conveyor.observability.store import COUNTED, MetricDeltas, MetricsStore, Series, SeriesCounts
from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import QueueKeys
from conveyor.worker.hooks import AttemptEnd, AttemptStart, WorkerHook

log = logging.getLogger(__name__)

RETRY_CAP_S = 5.0
UNKNOWN_TYPE = ""  # a stalled job removed before its type could be read


class MetricsRecorder(WorkerHook):
    """Counts every attempt's outcome, wait and run time, and stalled jobs, into this process and Redis."""

    def __init__(
        self, store: MetricsStore, prefix: str, flush_s: float = 0.2, process: ProcessMetrics | None = None
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.flush_s = flush_s
        self.process = process or ProcessMetrics()
        self._series = self.process.series  # the counts; read here on every attempt
        self._written: dict[Series, SeriesCounts] = {}  # copies of the counts the last successful write held
        self._stalled: list[tuple[str, str]] = []  # (queue, job id), typed at flush time
        self._timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._failures = 0
        self._parked = False  # the last flush found the app closed

    # --- hook -------------------------------------------------------------------------------------------

    def attempt_started(self, start: AttemptStart) -> None:
        """Record the wait time of the attempt."""
        job = start.job
        series = self._series.get((job.queue, job.type)) or self.process.counts(job.queue, job.type)
        series.wait.observe(start.wait_s)
        if self._timer is None and self._flushing is None:  # `idle`, inline: this runs for every job
            self._schedule()

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Count the outcome, and record the run time of a completed, retried or failed attempt."""
        job, outcome = end.job, end.outcome
        series = self._series.get((job.queue, job.type)) or self.process.counts(job.queue, job.type)
        outcomes = series.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if outcome in COUNTED:
            series.run.observe(end.run_s)
            if self._timer is None and self._flushing is None:  # `idle`, inline
                self._schedule()

    def jobs_stalled(self, queue: str, job_ids: Sequence[str]) -> None:
        """Remember the requeued jobs; their types are read when the counts are written."""
        self._stalled.extend((queue, job_id) for job_id in job_ids)
        self._schedule()

    # --- flushing ---------------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """True while no flush is due or running: everything counted is in Redis (or held for a closed app)."""
        return self._timer is None and self._flushing is None

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
        if self._stalled or self._gains()[0]:  # something came in during the flush, or it failed
            backoff = min(self.flush_s * 2**self._failures, RETRY_CAP_S) if self._failures else None
            self._schedule(backoff)

    def _gains(self) -> tuple[MetricDeltas, dict[Series, SeriesCounts]]:
        """What the counts gained since the last write, and copies of them as they are now."""
        deltas, now = MetricDeltas(), {}
        for series, counts in list(self._series.items()):
            now[series] = counts.copy()
            deltas.add_gain(series, now[series], self._written.get(series))
        return deltas, now

    async def flush(self) -> None:
        """Write every count gathered so far to Redis now (sent again by the next flush if Redis is unavailable)."""
        stalled, self._stalled = self._stalled, []
        try:
            if stalled:
                await self._count_stalled(stalled)
                stalled = []
            deltas, now = self._gains()
            if deltas:
                await self.store.write(deltas)
                self._written.update(now)
            self._failures = 0
        except (RedisError, OSError) as exc:
            self._failures += 1
            if self._failures == 1:
                log.warning("could not write job metrics to Redis (%s); keeping them for the next try", exc)
            self._stalled = stalled + self._stalled
        except NotConnectedError:
            # The app was closed with counts still held (before `Instrumentation.aclose`): no retry timer runs on
            # for a closed app; the counts are written by the flush that its next count, once connected, brings.
            log.debug("job metrics held: the app is not connected")
            self._parked = True
            self._stalled = stalled + self._stalled

    async def _count_stalled(self, stalled: list[tuple[str, str]]) -> None:
        client: Redis = self.store.client
        pipe = client.pipeline(transaction=False)
        for queue, job_id in stalled:
            pipe.hget(QueueKeys(self.prefix, queue, is_cluster(client)).job(job_id), "name")
        for (queue, _), job_type in zip(stalled, await pipe.execute(), strict=True):
            self.process.counts(queue, job_type or UNKNOWN_TYPE).stalled += 1

    async def aclose(self) -> None:
        """Stop the timer and write what is left (call when the worker has stopped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush()
