"""`ConveyorMetrics`: the cluster's metrics, read from Redis at scrape time, as a Prometheus collector.

Prometheus collectors are synchronous and Redis is read asynchronously, so a scrape is two steps:
`await metrics.refresh()` reads everything (queue counts, job totals, live workers, a PING), then `collect()`
turns that snapshot into metric families. The ASGI app and the worker's HTTP server both do exactly that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from conveyor.app import Conveyor
from conveyor.errors import ConveyorError
from conveyor.observability.store import COUNTERS, MetricsStore, StoredMetrics
from conveyor.queue.queue import QueueCounts
from conveyor.redis.keys import MetricsKeys
from conveyor.worker.registry import WorkerInfo

log = logging.getLogger(__name__)

QUEUE_STATES = {  # label value (BullMQ's state names) -> QueueCounts field
    "waiting": "waiting",
    "active": "active",
    "completed": "completed",
    "failed": "failed",
    "delayed": "delayed",
    "prioritized": "prioritized",
    "waiting-children": "waiting_children",
}
COUNTER_HELP = {
    "completed": "Jobs that completed.",
    "failed": "Jobs that failed for good (attempts used up, deadline passed, or not retryable).",
    "retried": "Failed attempts that will run again.",
    "stalled": "Jobs requeued because their worker stopped renewing the lock (it died or hung).",
    "dead_lettered": "Jobs moved to a dead-letter queue.",
}
HISTOGRAM_HELP = {
    "wait": ("conveyor_job_wait_seconds", "Time from enqueue (or due time, for delayed and retried jobs) to start."),
    "run": ("conveyor_job_run_seconds", "Run time of job attempts, whatever their outcome."),
}


def _jobs_in(counts: QueueCounts, state: str) -> int:
    """A queue's jobs in one BullMQ state: Conveyor's `waiting` includes the prioritized jobs, BullMQ's not."""
    value = int(getattr(counts, QUEUE_STATES[state]))
    return value - counts.prioritized if state == "waiting" else value


@dataclass(frozen=True)
class ClusterSnapshot:
    """Everything one scrape reports, read at one moment."""

    redis_up: bool = False
    ping_s: float | None = None
    queues: dict[str, QueueCounts] = field(default_factory=dict)
    workers: list[WorkerInfo] = field(default_factory=list)
    stored: StoredMetrics | None = None


class ConveyorMetrics(Collector):
    """Cluster-wide metrics of one app: queue depth, job totals and latencies, live workers, Redis latency."""

    def __init__(self, app: Conveyor, labels: dict[str, str] | None = None) -> None:
        self.app = app
        self.labels = dict(labels or {})
        self.snapshot = ClusterSnapshot()

    async def refresh(self) -> ClusterSnapshot:
        """Read the current state from Redis (a failed read reports `conveyor_redis_up 0`, never raises)."""
        try:
            client = self.app.client
            began = time.perf_counter()
            await client.ping()
            ping_s = time.perf_counter() - began
            queues = {name: await self.app.queue(name).counts() for name in self.app.queue_names}
            workers = await self.app.workers(node=False)  # Node workers publish no counts (and may share a name)
            keys = MetricsKeys(self.app.queue(self.app.queue_names[0]).conveyor_keys)
            stored = await MetricsStore(lambda: client, keys).read()
        except (RedisError, OSError, ConveyorError) as exc:
            log.warning("metrics scrape could not read Redis: %s", exc)
            self.snapshot = ClusterSnapshot()
        else:
            self.snapshot = ClusterSnapshot(True, ping_s, queues, workers, stored)
        return self.snapshot

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the series depend on what Redis holds at scrape time."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        """The metric families of the last `refresh`."""
        return self.families(self.snapshot)

    def families(self, snap: ClusterSnapshot) -> Iterator[Metric]:
        """The metric families of a snapshot."""
        yield self._gauge("conveyor_redis_up", "1 when the last scrape reached Redis.", [], [([], snap.redis_up)])
        if not snap.redis_up:
            return
        yield self._gauge(
            "conveyor_redis_ping_seconds", "Round trip of a PING at scrape time.", [], [([], snap.ping_s)]
        )
        yield from self._queue_families(snap.queues)
        if snap.stored is not None:
            yield from self._job_families(snap.stored)
        yield from self._worker_families(snap.workers)

    # --- families ---------------------------------------------------------------------------------------

    def _gauge(
        self, name: str, doc: str, labels: list[str], samples: Sequence[tuple[list[str], float | None]]
    ) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=[*labels, *self.labels])
        for values, value in samples:
            family.add_metric([*values, *self.labels.values()], float(value or 0))
        return family

    def _queue_families(self, queues: dict[str, QueueCounts]) -> Iterator[Metric]:
        yield self._gauge(
            "conveyor_queue_jobs",
            "Jobs in each queue by state (BullMQ's state names: waiting excludes prioritized, so states add up).",
            ["queue", "state"],
            [([q, s], _jobs_in(c, s)) for q, c in queues.items() for s in QUEUE_STATES],
        )
        paused = [([queue], counts.paused) for queue, counts in queues.items()]
        yield self._gauge("conveyor_queue_paused", "1 while the queue is paused.", ["queue"], paused)

    def _job_families(self, stored: StoredMetrics) -> Iterator[Metric]:
        for counter in COUNTERS:
            family = CounterMetricFamily(f"conveyor_jobs_{counter}", COUNTER_HELP[counter], labels=self._series_labels)
            for (queue, job_type), totals in sorted(stored.counters.items()):
                family.add_metric([queue, job_type, *self.labels.values()], totals[counter])
            yield family
        for key, (name, doc) in HISTOGRAM_HELP.items():
            histogram = HistogramMetricFamily(name, doc, labels=self._series_labels)
            for (queue, job_type), data in sorted(stored.histograms.get(key, {}).items()):
                values = [queue, job_type, *self.labels.values()]
                histogram.add_metric(values, [(le, float(n)) for le, n in data.buckets], sum_value=data.sum)
            yield histogram

    @property
    def _series_labels(self) -> list[str]:
        return ["queue", "job_type", *self.labels]

    def _worker_families(self, workers: list[WorkerInfo]) -> Iterator[Metric]:
        yield self._gauge("conveyor_workers", "Live worker processes.", [], [([], len(workers))])
        yield self._gauge(
            "conveyor_worker_up",
            "1 for every live worker process (a dead one drops out when its heartbeat expires).",
            ["worker"],
            [([w.name], 1) for w in workers],
        )
        yield self._gauge(
            "conveyor_worker_active_jobs",
            "Jobs each worker is running, by queue.",
            ["worker", "queue"],
            [([w.name, q], n) for w in workers for q, n in sorted(w.active.items())],
        )
        yield self._gauge(
            "conveyor_worker_concurrency",
            "Job slots of each worker, by queue.",
            ["worker", "queue"],
            [([w.name, q], n) for w in workers for q, n in sorted(w.queues.items())],
        )
