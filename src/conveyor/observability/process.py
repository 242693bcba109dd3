"""Metrics of one worker process, served on its `--metrics-port`: what this process ran.

The counts are plain numbers per (queue, job type) (`SeriesCounts`), changed by the event loop on every attempt
(`prometheus_client`'s metric objects take a lock and validate labels on every change). They are the one record
of what this process ran: the metrics recorder adds to them, `process_export` renders them for Prometheus at
scrape time (so a worker without a metrics port never imports `prometheus_client`), and the recorder's flush
writes what they gained to Redis. The jobs running now are read from this process's workers at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable

from conveyor.observability.store import Series, SeriesCounts
from conveyor.worker.worker import running_jobs


class ProcessMetrics:
    """Attempts, wait and run time of this process's jobs, and the jobs it runs now, with the deployment's extra
    metric labels."""

    def __init__(
        self, labels: dict[str, str] | None = None, running: Callable[[], dict[str, int]] = running_jobs
    ) -> None:
        self.labels = dict(labels or {})
        self.series: dict[Series, SeriesCounts] = {}
        self._running = running

    def counts(self, queue: str, job_type: str) -> SeriesCounts:
        """The counts of one series (made on first use)."""
        series = self.series.get((queue, job_type))
        if series is None:
            series = self.series[(queue, job_type)] = SeriesCounts()
        return series

    def running(self) -> dict[str, int]:
        """Jobs running now by queue, with 0 for the queues this process ran jobs of before."""
        now = self._running()
        return {**{queue: 0 for queue, _ in list(self.series)}, **now}
