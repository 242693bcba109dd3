"""Metrics of one worker process, served on its `--metrics-port`: what this process ran, and its own health.

Names start with `conveyor_process_` so they never add up with the cluster-wide `conveyor_*` series that the
API's `/metrics` reads from Redis, even when Prometheus scrapes both.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from conveyor.observability.store import RUN_BUCKETS
from conveyor.worker.hooks import AttemptEnd


class ProcessMetrics:
    """Attempts, run time and active jobs of this process, plus Python process metrics, in their own registry."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.labels = dict(labels or {})
        self.registry = CollectorRegistry()
        extra = list(self.labels)
        self.attempts = Counter(
            "conveyor_process_attempts",
            "Job attempts this process finished, by outcome (completed, retried, failed).",
            ["queue", "job_type", "outcome", *extra],
            registry=self.registry,
        )
        self.run_seconds = Histogram(
            "conveyor_process_job_run_seconds",
            "Run time of the job attempts this process finished.",
            ["queue", "job_type", *extra],
            buckets=RUN_BUCKETS,
            registry=self.registry,
        )
        self.active_jobs = Gauge(
            "conveyor_process_active_jobs",
            "Jobs running in this process now.",
            ["queue", *extra],
            registry=self.registry,
        )
        # Children by label values: `labels()` validates and locks on every call, a cost per job.
        self._active: dict[str, _Counting] = {}
        self._ended: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def active(self, queue: str) -> AbstractContextManager[None]:
        """Counts the attempts of one queue run inside it on the active-jobs gauge."""
        counting = self._active.get(queue)
        if counting is None:
            counting = self._active[queue] = _Counting(self.active_jobs.labels(queue=queue, **self.labels))
        return counting

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Count a finished attempt."""
        job = end.job
        key = (job.queue, job.type, str(end.outcome))
        series = self._ended.get(key)
        if series is None:
            series = self._ended[key] = (
                self.attempts.labels(queue=job.queue, job_type=job.type, outcome=key[2], **self.labels),
                self.run_seconds.labels(queue=job.queue, job_type=job.type, **self.labels),
            )
        series[0].inc()
        series[1].observe(end.run_s)


class _Counting:
    """Counts what runs inside it on a gauge; reusable and re-entrant (it holds no state of its own)."""

    __slots__ = ("_gauge",)

    def __init__(self, gauge: Gauge) -> None:
        self._gauge = gauge

    def __enter__(self) -> None:
        self._gauge.inc()

    def __exit__(self, *_: object) -> None:
        self._gauge.dec()
