"""A producer that runs no handlers validates payloads all the same: against models declared with
`app.job_type(...)`, and against the standard job types' models, which every `Conveyor` knows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from conveyor import Conveyor, JobState, load_settings
from conveyor.queue.errors import InvalidPayloadError


class Greeting(BaseModel):
    name: str
    times: int = 1


@pytest.fixture
async def producer(redis_url: str) -> AsyncIterator[Conveyor]:
    """A connected app with no handler registered: a producer-only process."""
    app = Conveyor(load_settings(redis_url=redis_url))
    await app.connect()
    yield app
    await app.close()


async def _pending(app: Conveyor, queue: str) -> int:
    return (await app.queue(queue).counts()).pending


@pytest.mark.parametrize(
    ("queue", "job_type", "bad"),
    [
        ("indexing", "index-file", {"fielPath": "src/a.py"}),
        ("ai-processing", "explain", {"path": "src/a.py", "provider": "nobody"}),
        ("background", "remove-old-jobs", {"older_than_hours": "a while"}),
    ],
)
async def test_a_producer_without_handlers_refuses_a_bad_payload_of_a_standard_job_type(
    producer: Conveyor, queue: str, job_type: str, bad: dict[str, object]
) -> None:
    assert producer.handlers == {}
    with pytest.raises(InvalidPayloadError, match=f"Invalid payload for {queue}/{job_type}"):
        await producer.add(queue, job_type, bad)
    assert await _pending(producer, queue) == 0


async def test_a_producer_without_handlers_stores_a_standard_payload_as_its_model_makes_it(
    producer: Conveyor,
) -> None:
    job_id = await producer.add("indexing", "index-file", {"filePath": "src/a.py"})
    stored = (await producer.queue("indexing").get_job(job_id)).data
    assert stored["path"] == "src/a.py"  # the design's `filePath`, stored under the model's field name
    assert stored["force"] is False


async def test_a_declared_job_type_is_validated_without_its_handler(producer: Conveyor) -> None:
    producer.job_type("background", "greet", payload=Greeting)
    with pytest.raises(InvalidPayloadError, match="name"):
        await producer.add("background", "greet", {"times": 2})
    job_id = await producer.add("background", "greet", {"name": "Ada"})
    assert (await producer.queue("background").get_job(job_id)).data == {"name": "Ada", "times": 1}


async def test_an_undeclared_job_type_without_a_handler_is_added_as_given(producer: Conveyor) -> None:
    job_id = await producer.add("background", "anything", {"free": "form"})
    assert (await producer.queue("background").get_job(job_id)).data == {"free": "form"}


def test_a_handler_registered_without_a_model_takes_precedence_over_a_declared_one() -> None:
    app = Conveyor(load_settings())
    app.job_type("background", "greet", payload=Greeting)

    @app.handler("background", "greet")
    async def greet(payload: dict[str, object]) -> None:
        return None

    assert app.validate_payload("background", "greet", {"anything": 1}) == {"anything": 1}


async def test_a_cleanup_with_delay_in_its_data_is_delayed_and_an_explicit_delay_option_wins(
    producer: Conveyor,
) -> None:
    queue = producer.queue("background")
    from_data = await producer.add("background", "cleanup-temp-files", {"delay": 86_400_000})
    from_option = await producer.add("background", "cleanup-temp-files", {"delay": 86_400_000}, delay_ms=5_000)
    plain = await producer.add("background", "cleanup-temp-files", {})
    jobs = {job_id: await queue.get_job(job_id) for job_id in (from_data, from_option, plain)}
    due = {job_id: job.delay_until for job_id, job in jobs.items()}
    assert jobs[from_data].state is JobState.DELAYED
    assert due[from_data] is not None
    assert abs((due[from_data] - jobs[from_data].created_at).total_seconds() - 86_400) < 1  # type: ignore[operator]
    assert due[from_option] is not None
    assert abs((due[from_option] - jobs[from_option].created_at).total_seconds() - 5) < 1  # type: ignore[operator]
    assert jobs[plain].state is not JobState.DELAYED
