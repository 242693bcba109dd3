"""An instrumented worker process for observability tests: `python -m tests.observability.worker_app QUEUE N`.

Job types: `ok` completes; `boom` always fails; `flaky` fails its first attempt; `sleep` sleeps
`payload["seconds"]`. With SPANS_FILE set, finished spans are appended to that file as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from conveyor import Conveyor, JobContext, load_settings
from conveyor.observability import configure_logging, instrument


class FileSpanExporter(SpanExporter):
    """Appends each finished span to a file as one JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a") as out:
            for span in spans:
                out.write(json.dumps(span_dict(span)) + "\n")
        return SpanExportResult.SUCCESS


def span_dict(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [event.name for event in span.events],
    }


def create_app() -> Conveyor:
    app = Conveyor(load_settings())
    for queue in app.queue_names:

        @app.handler(queue, "ok")
        async def ok(payload: dict[str, Any]) -> str:
            return "ok"

        @app.handler(queue, "boom")
        async def boom(payload: dict[str, Any]) -> None:
            raise RuntimeError("boom")

        @app.handler(queue, "flaky")
        async def flaky(payload: dict[str, Any], ctx: JobContext) -> str:
            if ctx.job.attempt == 1:
                raise RuntimeError("first attempt fails")
            return "ok"

        @app.handler(queue, "sleep")
        async def sleep(payload: dict[str, Any]) -> None:
            await asyncio.sleep(float(payload.get("seconds", 0.5)))

    return app


async def main(queue: str, concurrency: int) -> None:
    app = create_app()
    async with app:
        instrumentation = instrument(app)
        worker = app.worker([queue], {queue: concurrency})
        worker.install_signal_handlers()
        await worker.run()
        await instrumentation.aclose()


if __name__ == "__main__":
    configure_logging("console", "INFO")
    spans_file = os.environ.get("SPANS_FILE")
    provider = TracerProvider()
    if spans_file:
        provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(Path(spans_file))))
    trace.set_tracer_provider(provider)
    logging.getLogger(__name__).info("worker app starting")
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    provider.shutdown()
