"""`instrument(app)`: one call that gives an app its metrics and tracing hooks (the job log context is the
worker's own: `conveyor.worker.context.current_job`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from conveyor.app import Conveyor
from conveyor.observability.process import ProcessMetrics
from conveyor.observability.recorder import MetricsRecorder
from conveyor.observability.settings import ObservabilitySettings, load_observability_settings
from conveyor.observability.store import MetricsStore
from conveyor.queue.hooks import ProducerHook
from conveyor.redis.keys import ConveyorKeys, MetricsKeys

log = logging.getLogger(__name__)


@dataclass
class Instrumentation:
    """What `instrument` attached to an app."""

    settings: ObservabilitySettings
    recorder: MetricsRecorder
    process: ProcessMetrics
    tracing: bool

    async def aclose(self) -> None:
        """Write the job counts still held in memory (call after the worker stopped, before `app.close()`)."""
        await self.recorder.aclose()


_instrumented: WeakKeyDictionary[Conveyor, Instrumentation] = WeakKeyDictionary()


def instrument(app: Conveyor, settings: ObservabilitySettings | None = None) -> Instrumentation:
    """Attach Conveyor's observability to `app` (once; later calls return the same result).

    Every worker the app makes then counts jobs into the cluster-wide metrics and,
    with the `otel` extra installed and CONVEYOR_TRACING on, traces each attempt; every enqueue opens a
    producer span when the app has producer hooks. Call it in every process: API servers, producers, workers.
    The app must be connected before its workers run (the recorder writes through `app.client`).
    """
    existing = _instrumented.get(app)
    if existing is not None:
        return existing
    settings = settings or load_observability_settings()
    process = ProcessMetrics(settings.conveyor_metrics_labels)
    prefix = app.settings.conveyor_prefix
    store = MetricsStore(lambda: app.client, MetricsKeys(ConveyorKeys(prefix)))
    recorder = MetricsRecorder(store, prefix, settings.conveyor_metrics_flush_ms / 1000, process)
    app.hooks.append(recorder)
    tracing = settings.conveyor_tracing and _install_tracing(app)
    result = Instrumentation(settings, recorder, process, tracing)
    _instrumented[app] = result
    return result


def _install_tracing(app: Conveyor) -> bool:
    try:
        from conveyor.observability.tracing import ProducerTracing, ProviderWatch, WorkerTracing
    except ImportError:
        log.info("tracing is off: install the `otel` extra (opentelemetry-api) and an SDK to turn it on")
        return False
    recording = ProviderWatch()
    app.hooks.append(WorkerTracing(recording))
    attach_producer_hook(app, ProducerTracing(recording))
    return True


def attach_producer_hook(app: Conveyor, hook: ProducerHook) -> bool:
    """Add a producer hook to the app's queues; False (and a warning) if this app has no producer hooks."""
    hooks = getattr(app, "producer_hooks", None)
    if hooks is None:
        log.warning("this Conveyor has no producer hooks: enqueue spans and trace propagation are off")
        return False
    hooks.append(hook)
    return True
