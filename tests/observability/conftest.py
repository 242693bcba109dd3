"""Fixtures for observability tests: an instrumented app, an in-memory span exporter, worker subprocesses."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from conveyor import Conveyor, load_settings
from tests.support import ProcessGroup

ROOT = Path(__file__).resolve().parents[2]


def make_app(redis_url: str, **overrides: Any) -> Conveyor:
    """A Conveyor for tests whose enqueues reach producer hooks."""
    return Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2, **overrides))


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A connected, not yet instrumented app on the test's empty Redis."""
    conveyor = make_app(redis_url)
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans this process finishes during the test (an SDK provider is installed once per session)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class WorkerProcesses(ProcessGroup):
    """Worker subprocesses running `tests/observability/worker_app.py`, stopped after the test."""

    def start(self, queue: str = "background", concurrency: int = 4, **env: str) -> subprocess.Popen[bytes]:
        return self.spawn(
            "tests.observability.worker_app", queue, str(concurrency), CONVEYOR_METRICS_FLUSH_MS="50", **env
        )


@pytest.fixture
def worker_processes(redis_url: str) -> Iterator[WorkerProcesses]:
    """Start instrumented worker processes against the test's Redis."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()


def read_spans(path: Path) -> list[dict[str, Any]]:
    """Spans a worker subprocess wrote (one JSON object per line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
