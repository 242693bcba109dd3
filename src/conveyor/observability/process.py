"""Metrics of one worker process, served on its `--metrics-port`: what this process ran, and its own health.

Names start with `conveyor_process_` so they never add up with the cluster-wide `conveyor_*` series that the
API's `/metrics` reads from Redis, even when Prometheus scrapes both.

The job series are plain counts in this collector, rendered at scrape time: `prometheus_client`'s metric
objects take a lock and validate labels on every change, a cost on every attempt. Only the event loop changes
the counts; the scrape (on the metrics server's thread) reads copies of them.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from conveyor.observability.store import RUN_BUCKETS
from conveyor.worker.hooks import AttemptEnd

ATTEMPTS = ("conveyor_process_attempts", "Job attempts this process finished, by outcome (completed, retried, failed).")
RUN_SECONDS = ("conveyor_process_job_run_seconds", "Run time of the job attempts this process finished.")
ACTIVE_JOBS = ("conveyor_process_active_jobs", "Jobs running in this process now.")
_LE = ["+Inf" if math.isinf(bound) else repr(float(bound)) for bound in RUN_BUCKETS]  # as prometheus_client


class ProcessMetrics(Collector):
    """Attempts, run time and active jobs of this process, plus Python process metrics, in their own registry."""

    def __init__(self, labels: dict[str, str] | None = None) -> None:
        self.labels = dict(labels or {})
        self._extra = list(self.labels.values())
        self._attempts: dict[tuple[str, str, str], int] = {}  # (queue, job type, outcome) -> attempts
        self._runs: dict[tuple[str, str], _RunTimes] = {}  # (queue, job type) -> run times
        self._active: dict[str, _Counting] = {}  # queue -> attempts running now
        self.registry = CollectorRegistry()
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def active(self, queue: str) -> AbstractContextManager[None]:
        """Counts the attempts of one queue run inside it on the active-jobs gauge."""
        counting = self._active.get(queue)
        if counting is None:
            counting = self._active[queue] = _Counting()
        return counting

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Count a finished attempt."""
        job = end.job
        key = (job.queue, job.type, str(end.outcome))
        self._attempts[key] = self._attempts.get(key, 0) + 1
        runs = self._runs.get(key[:2])
        if runs is None:
            runs = self._runs[key[:2]] = _RunTimes()
        runs.observe(end.run_s)

    # --- the collector ------------------------------------------------------------------------------------

    def describe(self) -> Iterator[Metric]:
        """The families this collector serves (for the registry's duplicate check)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The job series as they are now."""
        attempts, runs, active = self._families()
        for (queue, job_type, outcome), count in list(self._attempts.items()):
            attempts.add_metric([queue, job_type, outcome, *self._extra], count)
        for (queue, job_type), times in list(self._runs.items()):
            runs.add_metric([queue, job_type, *self._extra], times.cumulative(), times.sum)
        for queue, counting in list(self._active.items()):
            active.add_metric([queue, *self._extra], counting.value)
        yield from (attempts, runs, active)

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily, GaugeMetricFamily]:
        extra = list(self.labels)
        return (
            CounterMetricFamily(*ATTEMPTS, labels=["queue", "job_type", "outcome", *extra]),
            HistogramMetricFamily(*RUN_SECONDS, labels=["queue", "job_type", *extra]),
            GaugeMetricFamily(*ACTIVE_JOBS, labels=["queue", *extra]),
        )


class _RunTimes:
    """One run-time histogram series: observations per bucket (not cumulative) and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * len(RUN_BUCKETS)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(RUN_BUCKETS, seconds)] += 1  # the first bucket whose bound holds it
        self.sum += seconds

    def cumulative(self) -> list[tuple[str, float]]:
        total = 0
        buckets = []
        for le, count in zip(_LE, list(self.counts), strict=True):
            total += count
            buckets.append((le, float(total)))
        return buckets


class _Counting:
    """Counts what runs inside it; reusable and re-entrant (entering adds one, leaving takes it back)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def __enter__(self) -> None:
        self.value += 1

    def __exit__(self, *_: object) -> None:
        self.value -= 1
