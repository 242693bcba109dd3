"""A worker process's metrics for Prometheus: `ProcessMetrics` rendered at scrape time, plus Python's own
process metrics. Names start with `conveyor_process_` so they never add up with the cluster-wide `conveyor_*`
series that the API's `/metrics` reads from Redis, even when Prometheus scrapes both.

The scrape runs on the metrics server's thread while the event loop changes the counts: it reads copies.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from conveyor.observability.process import ProcessMetrics

ATTEMPTS = ("conveyor_process_attempts", "Job attempts this process finished, by outcome (completed, retried, failed).")
RUN_SECONDS = (
    "conveyor_process_job_run_seconds",
    "Run time of the job attempts this process finished (completed, retried or failed).",
)
ACTIVE_JOBS = ("conveyor_process_active_jobs", "Jobs running in this process now.")


def process_registry(metrics: ProcessMetrics) -> CollectorRegistry:
    """A registry of this process's job series and its Python process metrics."""
    registry = CollectorRegistry()
    registry.register(ProcessJobs(metrics))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


class ProcessJobs(Collector):
    """The `conveyor_process_*` series of one `ProcessMetrics`."""

    def __init__(self, metrics: ProcessMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterator[Metric]:
        """The families served (for the registry's duplicate check)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The series as they are now."""
        metrics = self.metrics
        extra = list(metrics.labels.values())
        attempts, runs, active = self._families()
        for (queue, job_type), series in list(metrics.series.items()):
            for outcome, count in list(series.outcomes.items()):
                attempts.add_metric([queue, job_type, str(outcome), *extra], count)
            times = series.run.copy()
            runs.add_metric([queue, job_type, *extra], [(le, float(n)) for le, n in times.cumulative()], times.sum)
        for queue, running in sorted(metrics.running().items()):
            active.add_metric([queue, *extra], running)
        yield from (attempts, runs, active)

    def _families(self) -> tuple[CounterMetricFamily, HistogramMetricFamily, GaugeMetricFamily]:
        extra = list(self.metrics.labels)
        return (
            CounterMetricFamily(*ATTEMPTS, labels=["queue", "job_type", "outcome", *extra]),
            HistogramMetricFamily(*RUN_SECONDS, labels=["queue", "job_type", *extra]),
            GaugeMetricFamily(*ACTIVE_JOBS, labels=["queue", *extra]),
        )
