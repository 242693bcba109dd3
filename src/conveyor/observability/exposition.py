"""Serving metrics: `/metrics` for the API server (ASGI) and a metrics port for each worker process."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from conveyor.app import Conveyor
from conveyor.errors import ConveyorError
from conveyor.observability.collector import ClusterSnapshot, ConveyorMetrics
from conveyor.observability.instrument import instrument
from conveyor.observability.process_export import process_registry
from conveyor.observability.settings import ObservabilitySettings, load_observability_settings

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
SCRAPE_TIMEOUT_S = 5.0


def metrics_asgi_app(app: Conveyor, settings: ObservabilitySettings | None = None) -> ASGIApp:
    """An ASGI app answering GET with the cluster's metrics (queue depth, job totals and latencies from every
    worker, live workers, Redis latency), read from Redis at each scrape.

    Mount it on the API server, e.g. with Starlette: `Route("/metrics", metrics_asgi_app(conveyor))`. The app
    must be connected when scraped; a scrape while Redis is unreachable answers `conveyor_redis_up 0`.
    """
    settings = settings or load_observability_settings()
    metrics = ConveyorMetrics(app, settings.conveyor_metrics_labels)
    registry = CollectorRegistry()
    registry.register(metrics)
    lock = asyncio.Lock()

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"Method Not Allowed\n", "text/plain; charset=utf-8")
            return
        encoder, content_type = choose_encoder(_header(scope, b"accept"))
        async with lock:  # one Redis read per scrape, rendered from that same read
            await metrics.refresh()
            body = encoder(registry)
        await _respond(send, 200, b"" if scope["method"] == "HEAD" else body, content_type)

    return asgi


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _ScrapeOnLoop(Collector):
    """Reads the cluster metrics on the app's event loop from the metrics server's thread."""

    def __init__(self, metrics: ConveyorMetrics, loop: asyncio.AbstractEventLoop) -> None:
        self.metrics = metrics
        self.loop = loop

    def collect(self) -> Iterator[Metric]:
        future = asyncio.run_coroutine_threadsafe(self.metrics.refresh(), self.loop)
        try:
            snapshot = future.result(SCRAPE_TIMEOUT_S)
        except Exception as exc:  # the loop is blocked or closed: report Redis as unknown rather than hang
            future.cancel()
            log.warning("metrics scrape timed out waiting for the event loop (%s)", exc)
            return self.metrics.families(ClusterSnapshot())
        return self.metrics.families(snapshot)


@dataclass
class WorkerMetricsServer:
    """The HTTP server `enable_worker_metrics` started."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The port it listens on (useful when started on port 0)."""
        return int(self.server.server_port)

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def enable_worker_metrics(
    app: Conveyor,
    port: int,
    *,
    addr: str = "0.0.0.0",  # Prometheus scrapes from another host
    cluster: bool = False,
    settings: ObservabilitySettings | None = None,
) -> WorkerMetricsServer:
    """Instrument `app` (see `instrument`) and serve this process's metrics over HTTP on `port`.

    The endpoint shows what this process ran (`conveyor_process_*`) and its Python process metrics. With
    `cluster=True` it also shows the cluster-wide `conveyor_*` series the API's `/metrics` serves, for setups
    without an API server (scrape those from one target only). Call it from the running event loop, after
    `app.connect()`; stop the server with `.close()`.
    """
    instrumentation = instrument(app, settings)
    registry = CollectorRegistry()
    registry.register(process_registry(instrumentation.process))
    if cluster:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as exc:
            raise ConveyorError(
                "enable_worker_metrics(cluster=True) must be called from the running event loop "
                "(inside `async with app:`)."
            ) from exc
        registry.register(_ScrapeOnLoop(ConveyorMetrics(app, instrumentation.settings.conveyor_metrics_labels), loop))
    server, thread = start_http_server(port, addr, registry=registry)
    log.info("serving worker metrics on %s:%d", addr, server.server_port)
    return WorkerMetricsServer(server, thread)
