"""A job hash that cannot be run (written by another tool, an old version, or an attacker) fails alone and
visibly: FAILED with a reason naming what is malformed, logged at ERROR, dead-lettered, run zero times, and
the queue keeps serving the jobs behind it, each exactly once."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from conveyor import Conveyor, JobState, NewJob
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.queue import Queue
from tests.support import running, wait_until

QUEUE = "background"
GOOD_JOBS = 5
Fields = dict[str, bytes]


def well_formed() -> Fields:
    """A hash as BullMQ's add script stores it, for a job of the ledger's type."""
    return {
        "name": b"count",
        "data": b'{"n": -1}',
        "opts": b'{"attempts": 3}',
        "timestamp": str(int(time.time() * 1000)).encode(),
        "delay": b"0",
        "priority": b"0",
        "atm": b"0",
    }


def with_fields(**changes: bytes) -> Callable[[], Fields]:
    return lambda: {**well_formed(), **changes}


CRAFTED = {
    "pickle payload": (with_fields(data=pickle.dumps({"n": -1})), "field 'data' is not UTF-8", "pickle"),
    "data not JSON": (with_fields(data=b'{"n": -1'), "field 'data' is not JSON", None),
    "opts not JSON": (with_fields(opts=b"{attempts: 3}"), "field 'opts' is not JSON", None),
    "opts not an object": (with_fields(opts=b"[3]"), "field 'opts' is not a JSON object", None),
    "option of the wrong type": (with_fields(opts=b'{"attempts": "3"}'), "option 'attempts' is not an integer", None),
    "data not UTF-8": (with_fields(data=b'{"n": "\xff\xfe"}'), "field 'data' is not UTF-8 (byte 0xff", None),
    "opts not UTF-8": (with_fields(opts=b'{"attempts": 3, "x": "\xc3"}'), "field 'opts' is not UTF-8", None),
    "name not UTF-8": (with_fields(name=b"co\xffunt"), "field 'name' is not UTF-8", None),
    "atm not an integer": (with_fields(atm=b"two"), "field 'atm' is not an integer ('two')", None),
    # BullMQ's fetch script itself fails on this one, after taking the job (its HINCRBY comes last)
    "ats not an integer": (with_fields(ats=b"many"), "field 'ats' is not an integer ('many')", None),
    "timestamp not an integer": (with_fields(timestamp=b"yesterday"), "field 'timestamp' is not an integer", None),
    "priority not an integer": (with_fields(priority=b"high"), "field 'priority' is not an integer ('high')", None),
}


async def plant(raw: aioredis.Redis, queue: Queue, job_id: str, fields: Fields, *, priority: int = 0) -> None:
    """Write a job hash straight into Redis and queue its id as BullMQ's add scripts do: pushed on the left
    of `wait` (or scored into `prioritized`), then the wake-up marker."""
    keys = queue.keys
    await raw.hset(keys.job(job_id), mapping=fields)  # type: ignore[arg-type]
    if priority:
        counter = await raw.incr(keys.pc)
        await raw.zadd(keys.prioritized, {job_id: priority * 2**32 + counter % 2**32})
    else:
        await raw.lpush(keys.wait, job_id)
    await raw.zadd(keys.marker, {"0": 0})


def ledger_handler(app: Conveyor) -> list[int]:
    """Register the `count` handler; it appends each payload's `n` to the returned ledger (kept outside Redis)."""
    ledger: list[int] = []

    @app.handler(QUEUE, "count")
    async def count(payload: dict[str, int]) -> int:
        ledger.append(payload["n"])
        return payload["n"]

    return ledger


async def test_a_well_formed_hand_written_job_runs(app: Conveyor, raw: aioredis.Redis) -> None:
    """The control: `plant` lays a job out as BullMQ does, so the failures below come from the fields alone."""
    ledger = ledger_handler(app)
    queue = app.queue(QUEUE)
    async with running(app.worker([QUEUE])):
        await plant(raw, queue, "by-hand", well_formed())
        await wait_until(lambda: ledger == [-1], timeout=10)
        await wait_until(lambda: _state_is(queue, "by-hand", JobState.COMPLETED), timeout=10)


@pytest.mark.parametrize("case", list(CRAFTED))
async def test_malformed_job_fails_alone_with_its_reason_and_the_queue_keeps_serving(
    app: Conveyor, raw: aioredis.Redis, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    make, reason, also = CRAFTED[case]
    ledger = ledger_handler(app)
    queue = app.queue(QUEUE)
    bad_id = "crafted-" + case.replace(" ", "-")
    caplog.set_level(logging.ERROR)
    async with running(app.worker([QUEUE])):
        await plant(raw, queue, bad_id, make(), priority=1 if case.startswith("priority") else 0)
        good = [await app.add(QUEUE, "count", {"n": n}) for n in range(GOOD_JOBS)]
        await wait_until(lambda: _state_is(queue, bad_id, JobState.FAILED), timeout=10)
        await wait_until(lambda: len(ledger) >= GOOD_JOBS, timeout=10)
        letters = DeadLetters(queue)
        await wait_until(lambda: _has_letter(letters, bad_id), timeout=10)
    assert sorted(ledger) == list(range(GOOD_JOBS)), "a good job was lost or run twice, or the bad one ran"
    assert [await queue.state_of(job_id) for job_id in good] == [JobState.COMPLETED] * GOOD_JOBS
    job = await queue.get_job(bad_id)
    failed_reason = job.failed_reason or ""
    assert failed_reason.startswith("MalformedJobError: malformed job hash"), failed_reason
    assert reason in failed_reason
    assert also is None or also in failed_reason
    assert job.attempts_made == 1, "a malformed job fails once, without retries"
    assert reason in (await letters.get(bad_id)).failed_reason
    counts = await queue.counts()
    assert (counts.active, counts.pending, counts.failed) == (0, 0, 1)
    assert await raw.scard(queue.keys.stalled) == 0
    assert await raw.hget(queue.keys.job(bad_id), "stc") is None, "the job stalled before it failed"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR and bad_id in r.getMessage()]
    assert errors, [r.getMessage() for r in caplog.records]
    assert reason in errors[0].getMessage()


@pytest.mark.parametrize("case", ["ats not an integer", "data not UTF-8", "atm not an integer"])
async def test_malformed_job_inside_a_backlog_fails_alone_while_the_backlog_runs_once(
    app: Conveyor, raw: aioredis.Redis, case: str
) -> None:
    """Behind and ahead of busy work, the bad job is taken by a plain fetch, a prefetch or a finishing job's
    fetch-next (BullMQ's moveToFinished fails on its hash only after finishing the job before it)."""
    make, reason, _ = CRAFTED[case]
    ledger = ledger_handler(app)
    queue = app.queue(QUEUE)
    backlog = 40
    await app.add_bulk(QUEUE, [NewJob("count", {"n": n}) for n in range(backlog // 2)])
    await plant(raw, queue, "in-the-backlog", make(), priority=3)  # Conveyor's normal priority, in add order
    await app.add_bulk(QUEUE, [NewJob("count", {"n": n}) for n in range(backlog // 2, backlog)])
    async with running(app.worker([QUEUE], {QUEUE: 4})):
        await wait_until(lambda: len(ledger) >= backlog, timeout=15)
        await wait_until(lambda: _state_is(queue, "in-the-backlog", JobState.FAILED), timeout=10)
    assert sorted(ledger) == list(range(backlog)), "a good job was lost or run twice, or the bad one ran"
    assert reason in ((await queue.get_job("in-the-backlog")).failed_reason or "")
    counts = await queue.counts()
    assert (counts.active, counts.pending, counts.completed, counts.failed) == (0, 0, backlog, 1)
    assert await raw.hget(queue.keys.job("in-the-backlog"), "stc") is None, "the job stalled before it failed"


async def _state_is(queue: Queue, job_id: str, state: JobState) -> bool:
    return await queue.state_of(job_id) is state


async def _has_letter(letters: DeadLetters, job_id: str) -> bool:
    return any(letter.job_id == job_id for letter in await letters.letters())
