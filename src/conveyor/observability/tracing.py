"""OpenTelemetry tracing (the `otel` extra): a producer span at enqueue, a consumer span per attempt.

The producer injects its span context (W3C `traceparent`/`tracestate`) into the job's BullMQ options under `tm`,
as a JSON string: the same place and format BullMQ's own telemetry (`bullmq-otel`) uses, so traces join across
Node producers and Python workers both ways. The worker extracts it and makes it the parent of the attempt's
`process <queue>` span; jobs enqueued inside a handler become children of that span, so chains of jobs form one
trace. A job without `tm` starts a new trace (never the worker's ambient context).

The span of an attempt is ended when the worker reports the outcome (`attempt_ended`), after the result is
stored: the handler's error is recorded on it there, since the worker catches handler errors itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from conveyor.queue.hooks import Enqueue, ProducerHook
from conveyor.worker.context import JobInfo
from conveyor.worker.hooks import UNWRAPPED, AttemptEnd, AttemptStart, WorkerHook

log = logging.getLogger(__name__)

TRACER_NAME = "conveyor"
SYSTEM = "conveyor"
TELEMETRY_METADATA = "tm"  # BullMQ's encoded `opts.telemetry.metadata`
OMIT_CONTEXT = "omc"  # BullMQ's encoded `opts.telemetry.omitContext`


PROVIDER_RECHECK_S = 1.0


def _tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


class ProviderWatch:
    """Whether an OpenTelemetry tracer provider that records spans is set (an SDK's, not the API's default).

    Without one every span is a no-op, but making it still costs tens of microseconds per job: the hooks skip
    spans until a provider appears. Once one is set it stays (OpenTelemetry sets the global provider once);
    until then the global is looked at again at most once per `PROVIDER_RECHECK_S`, so a provider configured
    after the worker started is picked up within a second.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        provider: Callable[[], trace.TracerProvider] = trace.get_tracer_provider,
    ) -> None:
        self._clock = clock
        self._provider = provider
        self._on = False
        self._next_check = 0.0

    def __call__(self) -> bool:
        """True when spans would be recorded."""
        if self._on:
            return True
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + PROVIDER_RECHECK_S
        provider = self._provider()
        self._on = not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)
        return self._on


def inject_context(opts: dict[str, Any], ctx: otel_context.Context | None = None) -> None:
    """Store the trace context of `ctx` (default: the current one) in a job's BullMQ options."""
    if opts.get(OMIT_CONTEXT) or TELEMETRY_METADATA in opts:
        return
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    if carrier:
        opts[TELEMETRY_METADATA] = json.dumps(carrier, separators=(",", ":"))


def extract_context(opts: dict[str, Any]) -> otel_context.Context:
    """The producer's context stored in a job's options; an empty context (a new trace) when there is none."""
    metadata = opts.get(TELEMETRY_METADATA)
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = None
    if not isinstance(metadata, dict):
        return otel_context.Context()
    carrier = {str(key): str(value) for key, value in metadata.items()}
    return propagate.extract(carrier, context=otel_context.Context())


def _job_attributes(queue: str, operation: str, operation_type: str) -> dict[str, Any]:
    return {
        "messaging.system": SYSTEM,
        "messaging.operation.name": operation,
        "messaging.operation.type": operation_type,
        "messaging.destination.name": queue,
    }


class ProducerTracing(ProducerHook):
    """`add <queue>` (one job) or `addBulk <queue>` with one `create <queue>` span per job."""

    def __init__(self, recording: ProviderWatch | None = None) -> None:
        self._recording = recording or ProviderWatch()

    @contextlib.contextmanager
    def around_add(self, enqueue: Enqueue) -> Iterator[None]:
        """Open the producer span(s) and put their context into the jobs' options."""
        if not self._recording():
            yield
        elif len(enqueue.jobs) == 1:
            with self._single(enqueue):
                yield
        else:
            with self._bulk(enqueue):
                yield

    @contextlib.contextmanager
    def _single(self, enqueue: Enqueue) -> Iterator[None]:
        job = enqueue.jobs[0]
        attributes = {**_job_attributes(enqueue.queue, "add", "send"), "conveyor.job.type": job["name"]}
        with _tracer().start_as_current_span(
            f"add {enqueue.queue}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            inject_context(job["opts"])
            yield
            if enqueue.ids:
                span.set_attribute("messaging.message.id", enqueue.ids[0])

    @contextlib.contextmanager
    def _bulk(self, enqueue: Enqueue) -> Iterator[None]:
        attributes = {
            **_job_attributes(enqueue.queue, "addBulk", "send"),
            "messaging.batch.message_count": len(enqueue.jobs),
        }
        with _tracer().start_as_current_span(f"addBulk {enqueue.queue}", kind=SpanKind.CLIENT, attributes=attributes):
            creates: list[Span] = []
            for job in enqueue.jobs:
                span = _tracer().start_span(
                    f"create {enqueue.queue}",
                    kind=SpanKind.PRODUCER,
                    attributes={**_job_attributes(enqueue.queue, "create", "create"), "conveyor.job.type": job["name"]},
                )
                inject_context(job["opts"], trace.set_span_in_context(span))
                creates.append(span)
            try:
                yield
            finally:
                for index, span in enumerate(creates):
                    if index < len(enqueue.ids):
                        span.set_attribute("messaging.message.id", enqueue.ids[index])
                    span.end()


class WorkerTracing(WorkerHook):
    """A `process <queue>` consumer span around each attempt, child of the span that enqueued the job."""

    def __init__(self, recording: ProviderWatch | None = None) -> None:
        self._open: dict[JobInfo, Span] = {}
        self._recording = recording or ProviderWatch()

    def around_attempt(self, start: AttemptStart) -> AbstractContextManager[None]:
        """Start the span, make it current for the handler, and hand it to `attempt_ended` to finish."""
        return self._span_around(start) if self._recording() else UNWRAPPED

    @contextlib.contextmanager
    def _span_around(self, start: AttemptStart) -> Iterator[None]:
        span = self._start_span(start)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield
        except BaseException as exc:  # the attempt was lost (cancelled, lock lost, Redis gone): end it here
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"attempt lost: {type(exc).__name__}"))
            span.end()
            raise
        else:
            self._open[start.job] = span
            # attempt_ended runs right after this block when there is an outcome; a span still open on the
            # next loop iteration had none (the job was handed back at shutdown).
            asyncio.get_running_loop().call_soon(self._end_unfinished, start.job)
        finally:
            otel_context.detach(token)

    def _start_span(self, start: AttemptStart) -> Span:
        job = start.job
        opts = json.loads(start.fields.get("opts") or "{}")
        attributes = {
            **_job_attributes(job.queue, "process", "process"),
            "messaging.message.id": job.id,
            "conveyor.job.type": job.type,
            "conveyor.job.attempt": job.attempt,
            "conveyor.job.max_attempts": job.max_attempts,
            "conveyor.job.wait_seconds": start.wait_s,
            "conveyor.worker": job.worker,
        }
        return _tracer().start_span(
            f"process {job.queue}", context=extract_context(opts), kind=SpanKind.CONSUMER, attributes=attributes
        )

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Record the outcome (and the error of a failed attempt) and end the span."""
        if not self._open:
            return
        span = self._open.pop(end.job, None)
        if span is None:
            return
        span.set_attribute("conveyor.job.outcome", end.outcome)
        if end.error is not None:
            span.record_exception(end.error)
            span.set_status(Status(StatusCode.ERROR, f"{type(end.error).__name__}: {end.error}"))
        span.end()

    def _end_unfinished(self, job: JobInfo) -> None:
        span = self._open.pop(job, None)
        if span is not None:
            span.set_attribute("conveyor.job.outcome", "handed_back")
            span.end()
