"""Metrics of one worker process, served on its `--metrics-port`: what this process ran.

The counts are plain numbers, changed by the event loop on every attempt (`prometheus_client`'s metric objects
take a lock and validate labels on every change); `process_export` renders them for Prometheus at scrape time,
so a worker without a metrics port never imports `prometheus_client`.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from conveyor.observability.store import RUN_BUCKETS, BucketCounts
from conveyor.worker.hooks import AttemptEnd


class ProcessMetrics:
    """Attempts, run time and active jobs of this process, with the deployment's extra metric labels."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.labels = dict(labels or {})
        self.attempts: dict[tuple[str, str, str], int] = {}  # (queue, job type, outcome) -> attempts
        self.runs: dict[tuple[str, str], BucketCounts] = {}  # (queue, job type) -> run times
        self.running: dict[str, Counting] = {}  # queue -> attempts running now

    def active(self, queue: str) -> AbstractContextManager[None]:
        """Counts the attempts of one queue run inside it on the active-jobs gauge."""
        counting = self.running.get(queue)
        if counting is None:
            counting = self.running[queue] = Counting()
        return counting

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Count a finished attempt."""
        job = end.job
        key = (job.queue, job.type, str(end.outcome))
        self.attempts[key] = self.attempts.get(key, 0) + 1
        runs = self.runs.get(key[:2])
        if runs is None:
            runs = self.runs[key[:2]] = BucketCounts(RUN_BUCKETS)
        runs.observe(end.run_s)


class Counting:
    """Counts what runs inside it; reusable and re-entrant (entering adds one, leaving takes it back)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def __enter__(self) -> None:
        self.value += 1

    def __exit__(self, *_: object) -> None:
        self.value -= 1
