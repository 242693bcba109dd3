"""Observability: Prometheus metrics, OpenTelemetry traces (the `otel` extra) and structured logs.

In every process: `instrument(app)`. On the API server: mount `metrics_asgi_app(app)` at `/metrics`. In a
worker process: `enable_worker_metrics(app, port)` for its own metrics port. For logs: `configure_logging()`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor.observability.instrument import Instrumentation, instrument
from conveyor.observability.logs import configure_logging
from conveyor.observability.settings import ObservabilitySettings, load_observability_settings
from conveyor.worker.context import current_job  # the worker sets it; re-exported where it was

if TYPE_CHECKING:
    from conveyor.observability.collector import ConveyorMetrics
    from conveyor.observability.exposition import WorkerMetricsServer, enable_worker_metrics, metrics_asgi_app

# What needs `prometheus_client`, imported when first used: a worker without a metrics port never loads it.
_LAZY = {
    "ConveyorMetrics": "conveyor.observability.collector",
    "WorkerMetricsServer": "conveyor.observability.exposition",
    "enable_worker_metrics": "conveyor.observability.exposition",
    "metrics_asgi_app": "conveyor.observability.exposition",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
