"""OpenTelemetry: the enqueue span travels inside the job and parents the worker's span, across processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from conveyor import Conveyor, JobContext, JobState, NewJob
from conveyor.observability import instrument
from conveyor.observability.tracing import PROVIDER_RECHECK_S, ProviderWatch
from tests.observability.conftest import WorkerProcesses, read_spans
from tests.worker.conftest import running, state_is, wait_until


def _hex(value: int) -> str:
    return format(value, "016x")


async def test_worker_span_in_another_process_is_the_child_of_the_enqueue_span(
    app: Conveyor, spans: InMemorySpanExporter, worker_processes: WorkerProcesses, tmp_path: Path
) -> None:
    spans_file = tmp_path / "worker-spans.jsonl"
    worker_processes.start(SPANS_FILE=str(spans_file))
    instrument(app)
    ok = await app.add("background", "ok")
    boom = await app.add("background", "boom", attempts=1)
    await wait_until(lambda: len(read_spans(spans_file)) == 2, timeout=60)
    produced = {span.attributes["messaging.message.id"]: span for span in spans.get_finished_spans()}
    consumed = {span["attributes"]["messaging.message.id"]: span for span in read_spans(spans_file)}
    for job_id in (ok, boom):
        producer, consumer = produced[job_id], consumed[job_id]
        assert producer.kind is SpanKind.PRODUCER
        assert producer.name == "add background"
        assert consumer["kind"] == "CONSUMER"
        assert consumer["name"] == "process background"
        assert consumer["trace_id"] == format(producer.context.trace_id, "032x")
        assert consumer["parent_id"] == _hex(producer.context.span_id)
        assert consumer["attributes"]["messaging.system"] == "conveyor"
        assert consumer["attributes"]["messaging.destination.name"] == "background"
        assert consumer["attributes"]["messaging.operation.type"] == "process"
    assert consumed[ok]["status"] == "UNSET"
    assert consumed[ok]["attributes"]["conveyor.job.outcome"] == "completed"
    assert consumed[boom]["status"] == "ERROR"
    assert consumed[boom]["events"] == ["exception"]
    assert consumed[boom]["attributes"]["conveyor.job.outcome"] == "failed"


async def test_trace_context_is_stored_where_bullmq_telemetry_keeps_it(
    app: Conveyor, spans: InMemorySpanExporter
) -> None:
    instrument(app)
    job_id = await app.add("background", "ok")
    job = await app.queue("background").get_job(job_id)
    carrier = json.loads(job.options["tm"])  # opts.tm: BullMQ's `telemetry.metadata`, a JSON string
    (producer,) = spans.get_finished_spans()
    trace_id, span_id = format(producer.context.trace_id, "032x"), _hex(producer.context.span_id)
    assert carrier["traceparent"].startswith(f"00-{trace_id}-{span_id}-")  # W3C trace context


async def test_each_job_of_a_bulk_add_has_its_own_producer_span(app: Conveyor, spans: InMemorySpanExporter) -> None:
    instrument(app)
    ids = await app.add_bulk("background", [NewJob("ok"), NewJob("ok")])
    finished = spans.get_finished_spans()
    batch = next(span for span in finished if span.name == "addBulk background")
    creates = [span for span in finished if span.name == "create background"]
    assert batch.attributes["messaging.batch.message_count"] == 2
    assert sorted(span.attributes["messaging.message.id"] for span in creates) == sorted(ids)
    assert all(span.parent is not None and span.parent.span_id == batch.context.span_id for span in creates)
    for span in creates:
        job = await app.queue("background").get_job(str(span.attributes["messaging.message.id"]))
        assert _hex(span.context.span_id) in json.loads(job.options["tm"])["traceparent"]


async def test_jobs_added_by_a_handler_join_the_trace_of_the_job_that_added_them(
    app: Conveyor, spans: InMemorySpanExporter
) -> None:
    @app.handler("background", "parent")
    async def parent(payload: dict[str, Any]) -> str:
        return await app.add("background", "child")

    @app.handler("background", "child")
    async def child(payload: dict[str, Any]) -> None:
        return None

    instrument(app)
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        root = await app.add("background", "parent")
        await wait_until(lambda: state_is(queue, root, JobState.COMPLETED))
        child_id = (await queue.get_job(root)).result
        await wait_until(lambda: state_is(queue, child_id, JobState.COMPLETED))
        await wait_until(lambda: len(spans.get_finished_spans()) == 4)
    by_name: dict[tuple[str, str], Any] = {
        (span.name, str(span.attributes["messaging.message.id"])): span for span in spans.get_finished_spans()
    }
    root_add, root_process = by_name[("add background", root)], by_name[("process background", root)]
    child_add, child_process = by_name[("add background", child_id)], by_name[("process background", child_id)]
    assert len({span.context.trace_id for span in by_name.values()}) == 1
    assert root_process.parent.span_id == root_add.context.span_id
    assert child_add.parent.span_id == root_process.context.span_id
    assert child_process.parent.span_id == child_add.context.span_id


async def test_a_job_without_trace_context_starts_a_new_trace(app: Conveyor, spans: InMemorySpanExporter) -> None:
    @app.handler("background", "ok")
    async def ok(payload: dict[str, Any]) -> None:
        return None

    await app.add("background", "ok")  # enqueued before instrumenting: no `tm`
    instrument(app)
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("ambient worker context"):  # must not leak into the job's trace
        async with running(app.worker(["background"])):
            await wait_until(lambda: len(spans.get_finished_spans()) == 1)
    (process,) = [span for span in spans.get_finished_spans() if span.name == "process background"]
    assert process.parent is None


async def test_retried_attempts_each_get_a_span_with_the_error_recorded(
    app: Conveyor, spans: InMemorySpanExporter
) -> None:
    @app.handler("background", "flaky")
    async def flaky(payload: dict[str, Any], ctx: JobContext) -> None:
        if ctx.job.attempt == 1:
            raise RuntimeError("first attempt fails")

    instrument(app)
    async with running(app.worker(["background"])):
        job = await app.add("background", "flaky", attempts=2, backoff={"type": "fixed", "delay": 20})
        await wait_until(lambda: state_is(app.queue("background"), job, JobState.COMPLETED))
        await wait_until(lambda: len(spans.get_finished_spans()) == 3)
    attempts = sorted(
        (s for s in spans.get_finished_spans() if s.kind is SpanKind.CONSUMER),
        key=lambda s: s.attributes["conveyor.job.attempt"],
    )
    assert [s.attributes["conveyor.job.outcome"] for s in attempts] == ["retried", "completed"]
    assert attempts[0].status.status_code is StatusCode.ERROR
    assert attempts[0].events[0].attributes["exception.message"] == "first attempt fails"
    assert attempts[1].status.status_code is StatusCode.UNSET
    assert attempts[0].parent is not None
    assert attempts[0].parent == attempts[1].parent  # both children of the enqueue span


def test_spans_are_skipped_until_a_recording_tracer_provider_is_set_then_always_made() -> None:
    now = [100.0]
    provider: list[trace.TracerProvider] = [trace.ProxyTracerProvider()]
    looks: list[float] = []

    def current() -> trace.TracerProvider:
        looks.append(now[0])
        return provider[0]

    recording = ProviderWatch(clock=lambda: now[0], provider=current)
    assert not recording()
    now[0] += PROVIDER_RECHECK_S / 2
    assert not recording()  # not looked at again within the interval: the common no-SDK case costs no lookup
    provider[0] = trace.NoOpTracerProvider()
    now[0] += PROVIDER_RECHECK_S
    assert not recording()  # a no-op provider records nothing either
    provider[0] = TracerProvider()
    assert not recording()  # set within the interval: seen at the next look
    now[0] += PROVIDER_RECHECK_S
    assert recording()
    now[0] += 0.001
    provider[0] = trace.ProxyTracerProvider()
    assert recording()  # once on, on for good (OpenTelemetry sets its global provider once)
    assert looks == [100.0, 100.0 + 1.5 * PROVIDER_RECHECK_S, 100.0 + 2.5 * PROVIDER_RECHECK_S]
