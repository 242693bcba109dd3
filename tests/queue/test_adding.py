"""Producing jobs: ids, read-back, idempotent ids, bulk adds, and what a payload may be."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor import Conveyor, JobOptions, JobState, NewJob, Queue
from conveyor.queue.errors import InvalidPayloadError, PayloadTooLargeError
from tests.queue.conftest import QUEUE

LIMIT = 1024 * 1024  # the default CONVEYOR_MAX_PAYLOAD_BYTES


async def keys_of(app: Conveyor) -> list[str]:
    return sorted(await app.client.keys("*"))


class Opaque:
    """Not JSON: a payload must never be pickled."""


async def test_add_returns_an_id_and_the_job_reads_back_with_state_data_type_and_options(app: Conveyor) -> None:
    before = datetime.now(UTC)
    job_id = await app.add(QUEUE, "ok", {"filePath": "src/index.ts", "n": [1, 2.5, None]}, priority="high", attempts=4)
    job = await app.queue(QUEUE).get_job(job_id)
    assert job_id
    assert job.id == job_id
    assert job.queue == QUEUE
    assert job.type == "ok"
    assert job.data == {"filePath": "src/index.ts", "n": [1, 2.5, None]}
    assert job.state is JobState.WAITING  # in BullMQ's prioritized set (`normal` is 3), still waiting
    assert job.priority == 2
    assert job.options["attempts"] == 4
    assert job.max_attempts == 4
    assert job.options["priority"] == 2
    assert job.created_at is not None
    assert before - timedelta(seconds=1) <= job.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert job.attempts_made == 0
    assert job.result is None
    assert job.failed_reason is None


async def test_generated_ids_are_distinct_client_made_and_never_all_digits(app: Conveyor) -> None:
    ids = [await app.add(QUEUE, "ok") for _ in range(3)] + await app.add_bulk(QUEUE, [NewJob("ok")] * 3)
    assert len(set(ids)) == 6
    assert all(re.fullmatch("[0-9a-f]{32}", job_id) and not job_id.isdigit() for job_id in ids), ids
    assert await app.queue(QUEUE).job_ids(JobState.PRIORITIZED) == ids  # listed in the order they were added


async def test_delayed_job_reads_back_as_delayed_with_its_due_time(app: Conveyor) -> None:
    job_id = await app.add(QUEUE, "ok", delay_ms=60_000)
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.DELAYED
    assert job.created_at is not None
    assert job.delay_until == job.created_at + timedelta(seconds=60)


async def test_no_data_is_stored_as_an_empty_object(app: Conveyor) -> None:
    job_id = await app.add(QUEUE, "ok")
    assert (await app.queue(QUEUE).get_job(job_id)).data == {}


async def test_adding_the_same_job_id_twice_returns_that_id_and_writes_one_job(app: Conveyor) -> None:
    first = await app.add(QUEUE, "ok", {"v": 1}, job_id="index-src/a.ts")
    second = await app.add(QUEUE, "ok", {"v": 2}, job_id="index-src/a.ts")
    assert first == second == "index-src/a.ts"
    counts = await app.queue(QUEUE).counts()
    assert counts.pending == 1
    assert (await app.queue(QUEUE).get_job(first)).data == {"v": 1}  # the first add wins


async def test_add_bulk_writes_every_job_and_returns_their_ids_in_order(app: Conveyor) -> None:
    jobs = [NewJob("ok", {"i": i}) for i in range(5)] + [NewJob("ok", {"i": 5}, JobOptions(delay_ms=60_000))]
    ids = await app.add_bulk(QUEUE, jobs)
    queue = app.queue(QUEUE)
    assert len(set(ids)) == 6
    assert [(await queue.get_job(job_id)).data for job_id in ids] == [{"i": i} for i in range(6)]
    counts = await queue.counts()
    assert (counts.prioritized, counts.delayed) == (5, 1)


@pytest.mark.parametrize(
    "bad",
    [{1, 2}, b"bytes", float("nan"), Opaque(), "x" * LIMIT],
    ids=["set", "bytes", "nan", "object", "too-large"],
)
async def test_add_bulk_with_one_bad_payload_raises_and_writes_nothing(app: Conveyor, bad: Any) -> None:
    jobs = [NewJob("ok", {"i": 0}), NewJob("ok", {"bad": bad}), NewJob("ok", {"i": 2})]
    with pytest.raises((InvalidPayloadError, PayloadTooLargeError)):
        await app.add_bulk(QUEUE, jobs)
    assert await keys_of(app) == []


async def test_add_bulk_with_an_empty_job_type_raises_and_writes_nothing(app: Conveyor) -> None:
    with pytest.raises(InvalidPayloadError, match="Job type"):
        await app.add_bulk(QUEUE, [NewJob("ok"), NewJob("")])
    assert await keys_of(app) == []


async def test_payload_of_exactly_the_limit_is_accepted(app: Conveyor) -> None:
    text = "x" * (LIMIT - 2)  # JSON adds the two quotes
    job_id = await app.add(QUEUE, "ok", text)
    assert (await app.queue(QUEUE).get_job(job_id)).data == text


async def test_payload_one_byte_over_the_limit_is_refused_and_nothing_is_written(app: Conveyor) -> None:
    with pytest.raises(PayloadTooLargeError, match=r"1048577 bytes; the limit is 1048576") as caught:
        await app.add(QUEUE, "ok", "x" * (LIMIT - 1))
    assert "CONVEYOR_MAX_PAYLOAD_BYTES" in str(caught.value)
    assert await keys_of(app) == []


async def test_payload_limit_counts_utf8_bytes_not_characters(app: Conveyor) -> None:
    with pytest.raises(PayloadTooLargeError):
        await app.add(QUEUE, "ok", "é" * (LIMIT // 2))  # half a million characters, a mebibyte and more
    assert await keys_of(app) == []


@pytest.mark.parametrize(
    "bad",
    [Opaque(), b"raw bytes", float("nan"), float("inf"), {"tags": {"a", "b"}}, {("tuple", "key"): 1}],
    ids=["object", "bytes", "nan", "inf", "set", "tuple-key"],
)
async def test_non_json_payload_is_refused_with_a_clear_error_and_nothing_is_written(app: Conveyor, bad: Any) -> None:
    with pytest.raises(InvalidPayloadError, match="Payload must be JSON"):
        await app.add(QUEUE, "ok", bad)
    assert await keys_of(app) == []


@pytest.mark.parametrize(
    "bad", [{"text": "a\ud800b"}, {"\udcff": 1}, ["\udc80"]], ids=["in-a-value", "in-a-key", "escaped-byte"]
)
async def test_a_payload_with_a_lone_surrogate_is_refused_with_a_clear_error_and_nothing_is_written(
    app: Conveyor, bad: Any
) -> None:
    """JSON's "\\ud800" parses to a lone surrogate, which no UTF-8 text can carry."""
    with pytest.raises(InvalidPayloadError, match=r"Payload must be valid Unicode text: .* is a lone surrogate"):
        await app.add(QUEUE, "ok", bad)
    with pytest.raises(InvalidPayloadError, match="lone surrogate"):
        await app.add_bulk(QUEUE, [NewJob("ok", {"i": 0}), NewJob("ok", bad)])
    assert await keys_of(app) == []


async def test_a_job_type_with_a_lone_surrogate_is_refused_and_nothing_is_written(app: Conveyor) -> None:
    with pytest.raises(InvalidPayloadError, match=r"Job type must be .*no lone surrogates"):
        await app.add(QUEUE, "ok\ud800", {"i": 0})
    with pytest.raises(InvalidPayloadError, match="Job type"):
        await app.add_bulk(QUEUE, [NewJob("ok"), NewJob("\udc80")])
    assert await keys_of(app) == []


async def test_created_at_is_the_queue_clock_at_add(app: Conveyor) -> None:
    queue = Queue(app.client, QUEUE, clock=lambda: 1_700_000_000.0)
    job_id = await queue.add("ok")
    assert (await queue.get_job(job_id)).created_at == datetime.fromtimestamp(1_700_000_000, UTC)
