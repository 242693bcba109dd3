"""Structured logs: JSON or console lines; lines logged during a job carry the job's fields."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState
from conveyor.observability import configure_logging, instrument
from conveyor.worker.hooks import AttemptEnd, WorkerHook
from tests.worker.conftest import running, state_is, wait_until

log = logging.getLogger("tests.observability.handlers")
ended_log = logging.getLogger("tests.observability.hooks")

pytestmark = pytest.mark.usefixtures("restore_logging")


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def _run_one(app: Conveyor, job_type: str) -> str:
    queue = app.queue("background")
    async with running(app.worker(["background"])):
        job_id = await app.add("background", job_type, {"n": 1})
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    return job_id


async def test_json_lines_logged_by_a_job_carry_queue_id_type_attempt_and_worker(app: Conveyor) -> None:
    @app.handler("background", "greet")
    async def greet(payload: dict[str, Any]) -> None:
        log.info("hello from %s", "greet", extra={"files": 3})

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    instrument(app)
    job_id = await _run_one(app, "greet")
    (line,) = [line for line in _lines(stream) if line["logger"] == log.name]
    assert line["message"] == "hello from greet"
    assert line["level"] == "info"
    assert line["files"] == 3
    assert (line["queue"], line["job_id"], line["job_type"], line["attempt"]) == ("background", job_id, "greet", 1)
    assert line["worker"]
    assert line["time"].endswith("+00:00")


async def test_lines_logged_outside_a_job_carry_no_job_fields(app: Conveyor) -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    instrument(app)
    log.warning("not in a job")
    (line,) = _lines(stream)
    assert line["message"] == "not in a job"
    assert "job_id" not in line


async def test_console_lines_show_the_job_fields_in_brackets(app: Conveyor) -> None:
    @app.handler("background", "greet")
    async def greet(payload: dict[str, Any]) -> None:
        log.info("hello")

    stream = io.StringIO()
    configure_logging("console", "INFO", stream=stream)
    instrument(app)
    job_id = await _run_one(app, "greet")
    (line,) = [line for line in stream.getvalue().splitlines() if "hello" in line]
    assert f"[queue=background job_id={job_id} job_type=greet attempt=1 worker=" in line


async def test_json_lines_carry_the_trace_of_the_job(app: Conveyor, spans: Any) -> None:
    @app.handler("background", "greet")
    async def greet(payload: dict[str, Any]) -> None:
        log.info("traced")

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    instrument(app)
    await _run_one(app, "greet")
    (line,) = [line for line in _lines(stream) if line["message"] == "traced"]
    (process,) = [span for span in spans.get_finished_spans() if span.name == "process background"]
    assert line["trace_id"] == format(process.context.trace_id, "032x")
    assert line["span_id"] == format(process.context.span_id, "016x")


async def test_lines_logged_by_a_sync_handler_carry_the_job_fields(app: Conveyor) -> None:
    @app.handler("background", "sync-greet")
    def greet(payload: dict[str, Any]) -> None:
        log.info("hello from a thread")

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    instrument(app)
    job_id = await _run_one(app, "sync-greet")
    (line,) = [line for line in _lines(stream) if line["logger"] == log.name]
    assert line.get("job_id") == job_id


def test_configuring_twice_replaces_the_handler_instead_of_doubling_lines() -> None:
    stream = io.StringIO()
    configure_logging("json", "INFO", stream=io.StringIO())
    configure_logging("json", "INFO", stream=stream)
    log.info("once")
    assert len(stream.getvalue().splitlines()) == 1


def test_format_and_level_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_LOG_FORMAT", "json")
    monkeypatch.setenv("CONVEYOR_LOG_LEVEL", "warning")
    stream = io.StringIO()
    configure_logging(stream=stream)
    log.info("hidden")
    log.warning("shown")
    assert [line["message"] for line in _lines(stream)] == ["shown"]


async def test_every_line_carries_the_job_it_was_logged_for_across_fetch_next_and_prefetch(app: Conveyor) -> None:
    @app.handler("background", "echo")
    async def echo(payload: dict[str, Any], ctx: JobContext) -> None:
        log.info("running %s", ctx.job.id)
        if payload["n"] % 7 == 0:
            raise ValueError(f"job {ctx.job.id} fails on purpose")

    class EndLogger(WorkerHook):
        def attempt_ended(self, end: AttemptEnd) -> None:  # runs after the attempt, outside its log context
            ended_log.info("attempt of %s ended", end.job.id)

    stream = io.StringIO()
    configure_logging("json", "INFO", stream=stream)
    instrument(app)
    app.hooks.append(EndLogger())
    queue = app.queue("background")
    ids = [await app.add("background", "echo", {"n": n}) for n in range(120)]  # a backlog: fetch-next and prefetch
    async with running(app.worker(["background"], {"background": 4})):
        await wait_until(lambda: _all_finished(queue, ids), timeout=30)
    lines = _lines(stream)
    assert len([line for line in lines if line["logger"] == log.name]) == len(ids)
    dead_letters = [line for line in lines if line["message"].endswith("is a dead letter")]
    assert len(dead_letters) == len(range(0, 120, 7))
    # Every line that names a job (the handler's, and the worker's own after the attempt) is filed under it.
    named = [line for line in lines if line["logger"] != ended_log.name]
    wrong = [line for line in named if any(i in line["message"] and i != line.get("job_id") for i in ids)]
    assert wrong == []
    # A line logged between attempts, naming no job by its fields, carries none, not the job that ran before.
    ended = [line for line in lines if line["logger"] == ended_log.name]
    assert len(ended) == len(ids)
    assert [line for line in ended if line.get("job_id") not in (None, line["message"].split()[2])] == []


async def _all_finished(queue: Any, ids: list[str]) -> bool:
    states = [await queue.state_of(job_id) for job_id in ids]
    return all(state in (JobState.COMPLETED, JobState.FAILED) for state in states)
