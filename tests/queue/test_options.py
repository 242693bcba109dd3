"""Job options: what is refused, and how accepted options and queue defaults are stored (BullMQ's names)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from conveyor import Conveyor, ConveyorError, JobOptions
from conveyor.config import BackoffSettings, QueueSettings
from conveyor.queue.errors import InvalidOptionsError
from conveyor.queue.options import bullmq_options, keep_jobs
from tests.queue.conftest import QUEUE

INVALID_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("priority", {"priority": 0}),
    ("priority", {"priority": -1}),
    ("priority", {"priority": 2_097_153}),
    ("priority", {"priority": "urgent"}),
    ("priority", {"priority": 1.5}),
    ("delay_ms", {"delay_ms": -1}),
    ("attempts", {"attempts": 0}),
    ("timeout_ms", {"timeout_ms": 0}),
    ("job_id", {"job_id": "a:b"}),
    ("job_id", {"job_id": "has space"}),
    ("job_id", {"job_id": "123"}),
    ("job_id", {"job_id": ""}),
    ("backoff", {"backoff": {"type": "linear", "delay": 1000}}),
    ("backoff", {"backoff": {"type": "fixed", "delay": -5}}),
    ("keep_completed", {"keep_completed": -1}),
    ("unknown", {"retries": 3}),
]


@pytest.mark.parametrize(("field", "options"), INVALID_OPTIONS, ids=[repr(o) for _, o in INVALID_OPTIONS])
def test_invalid_option_is_refused_naming_the_field(field: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as caught:
        JobOptions(**options)
    assert (field if field != "unknown" else "retries") in str(caught.value)


def test_boolean_priority_is_refused() -> None:
    with pytest.raises(ValidationError, match="priority"):
        JobOptions(priority=True)


@pytest.mark.parametrize("options", [o for _, o in INVALID_OPTIONS[:9]], ids=[repr(o) for _, o in INVALID_OPTIONS[:9]])
async def test_invalid_option_given_to_add_writes_nothing(app: Conveyor, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidOptionsError):
        await app.add(QUEUE, "ok", {}, **options)
    assert await app.client.keys("*") == []


async def test_invalid_option_given_to_add_raises_a_conveyor_error_naming_the_option(app: Conveyor) -> None:
    with pytest.raises(ConveyorError, match="priority"):
        await app.add(QUEUE, "ok", {}, priority=0)


@pytest.mark.parametrize(
    ("name", "value"), [("critical", 1), ("high", 2), ("normal", 3), ("low", 4), (7, 7), (2_097_152, 2_097_152)]
)
def test_priority_names_map_to_bullmq_numbers_where_lower_runs_first(name: str | int, value: int) -> None:
    assert JobOptions(priority=name).priority_value == value


def test_options_are_stored_under_bullmq_field_names() -> None:
    deadline = datetime(2030, 1, 1, tzinfo=UTC)
    options = JobOptions(
        priority="high",
        delay_ms=500,
        attempts=4,
        backoff=BackoffSettings(type="fixed", delay=250),
        timeout_ms=9000,
        deadline=deadline,
        job_id="file-42",
        keep_completed=10,
        keep_failed=0,
    )
    assert bullmq_options(options, QueueSettings(), 1234) == {
        "attempts": 4,
        "delay": 500,
        "priority": 2,
        "timestamp": 1234,
        "removeOnComplete": 10,
        "removeOnFail": True,  # keep none: remove at once
        "backoff": {"type": "fixed", "delay": 250, "jitter": 0.0},
        "timeout": 9000,
        "deadline": int(deadline.timestamp() * 1000),
        "jobId": "file-42",
    }


def test_unset_options_take_the_queue_defaults() -> None:
    defaults = QueueSettings(
        attempts=3, backoff=BackoffSettings(delay=1000), timeout_ms=30_000, keep_completed=100, keep_failed=500
    )
    stored = bullmq_options(JobOptions(), defaults, 0)
    assert stored["attempts"] == 3
    assert stored["backoff"] == {"type": "exponential", "delay": 1000, "jitter": 0.0}
    assert stored["timeout"] == 30_000
    assert (stored["removeOnComplete"], stored["removeOnFail"]) == (100, 500)


def test_without_retention_every_finished_job_is_kept() -> None:
    stored = bullmq_options(JobOptions(), QueueSettings(), 0)
    assert (stored["removeOnComplete"], stored["removeOnFail"]) == (False, False)
    assert keep_jobs(stored["removeOnComplete"]) == {"count": -1}


def test_naive_deadline_is_taken_as_utc() -> None:
    options = JobOptions(deadline=datetime(2030, 1, 1, 12, 0))
    assert options.deadline == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
