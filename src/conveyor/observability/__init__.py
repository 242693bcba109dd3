"""Observability: Prometheus metrics, OpenTelemetry traces (the `otel` extra) and structured logs.

In every process: `instrument(app)`. On the API server: mount `metrics_asgi_app(app)` at `/metrics`. In a
worker process: `enable_worker_metrics(app, port)` for its own metrics port. For logs: `configure_logging()`.
"""

from conveyor.observability.collector import ConveyorMetrics
from conveyor.observability.exposition import WorkerMetricsServer, enable_worker_metrics, metrics_asgi_app
from conveyor.observability.instrument import Instrumentation, instrument
from conveyor.observability.logs import configure_logging
from conveyor.observability.settings import ObservabilitySettings, load_observability_settings
from conveyor.worker.context import current_job  # the worker sets it; re-exported where it was

__all__ = [
    "ConveyorMetrics",
    "Instrumentation",
    "ObservabilitySettings",
    "WorkerMetricsServer",
    "configure_logging",
    "current_job",
    "enable_worker_metrics",
    "instrument",
    "load_observability_settings",
    "metrics_asgi_app",
]
