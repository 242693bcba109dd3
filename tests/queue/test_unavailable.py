"""Redis going away: producing and managing calls fail fast with `RedisUnavailableError` that says what may have
been written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from conveyor import Conveyor, JobOptions, JobState, NewJob, load_settings
from conveyor.queue.errors import EnqueueUnconfirmedError
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import RedisUnavailableError
from tests.queue.conftest import QUEUE

OwnRedisFactory = Callable[..., EmbeddedRedis]


@pytest.fixture
async def stopped(own_redis: OwnRedisFactory) -> AsyncIterator[tuple[Conveyor, EmbeddedRedis]]:
    """A connected app whose private Redis has just been stopped."""
    server = own_redis()
    app = Conveyor(load_settings(redis_url=server.url))
    await app.connect()
    server.stop()
    yield app, server
    await app.close()


async def refused_within_seconds(operation: Awaitable[Any]) -> RedisUnavailableError:
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError) as caught:
        await operation
    assert time.monotonic() - started < 5
    return caught.value


async def test_add_with_redis_down_raises_unavailable_naming_the_id_that_is_safe_to_add_again(
    stopped: tuple[Conveyor, EmbeddedRedis],
) -> None:
    app, server = stopped
    error = await refused_within_seconds(app.add(QUEUE, "ok", {"n": 1}))
    assert isinstance(error, EnqueueUnconfirmedError)
    [job_id] = error.job_ids
    assert f"the job may or may not have been added; adding again with the same job id ({job_id}" in str(error)
    assert "REDIS_URL" in str(error)
    assert server.password not in str(error)


async def test_add_bulk_with_redis_down_raises_unavailable_naming_the_ids_that_are_safe_to_add_again(
    stopped: tuple[Conveyor, EmbeddedRedis],
) -> None:
    app, _ = stopped
    error = await refused_within_seconds(
        app.add_bulk(QUEUE, [NewJob("ok"), NewJob("ok", options=JobOptions(job_id="mine"))])
    )
    assert isinstance(error, EnqueueUnconfirmedError)
    assert len(error.job_ids) == 2
    assert error.job_ids[1] == "mine"
    assert "the 2 jobs may or may not have been added" in str(error)


async def all_refused_within_seconds(*operations: Awaitable[Any]) -> list[BaseException]:
    """Run the operations at once (each waits out the client's reconnect attempts) and return the errors."""
    started = time.monotonic()
    outcomes = await asyncio.gather(*operations, return_exceptions=True)
    assert time.monotonic() - started < 5
    return [outcome if isinstance(outcome, BaseException) else AssertionError("no error") for outcome in outcomes]


async def test_reading_with_redis_down_raises_unavailable(stopped: tuple[Conveyor, EmbeddedRedis]) -> None:
    app, _ = stopped
    queue = app.queue(QUEUE)
    errors = await all_refused_within_seconds(queue.get_job("1"), queue.counts())
    assert [type(error) for error in errors] == [RedisUnavailableError] * 2


async def test_managing_with_redis_down_raises_unavailable(stopped: tuple[Conveyor, EmbeddedRedis]) -> None:
    app, _ = stopped
    queue = app.queue(QUEUE)
    operations = {
        "pause": queue.pause(),
        "resume": queue.resume(),
        "jobs": queue.jobs(JobState.WAITING),
        "retry": queue.retry("1"),
        "promote": queue.promote("1"),
        "remove": queue.remove("1"),
        "cancel": queue.cancel("1"),
        "clear": queue.clear(),
    }
    errors = await all_refused_within_seconds(*operations.values())
    assert {name: type(error).__name__ for name, error in zip(operations, errors, strict=True)} == {
        name: "RedisUnavailableError" for name in operations
    }


async def test_add_after_redis_comes_back_succeeds(stopped: tuple[Conveyor, EmbeddedRedis]) -> None:
    app, server = stopped
    with pytest.raises(RedisUnavailableError):
        await app.add(QUEUE, "ok")
    server.start()
    job_id = await app.add(QUEUE, "ok", {"n": 2})
    assert (await app.queue(QUEUE).get_job(job_id)).data == {"n": 2}
    assert (await app.queue(QUEUE).counts()).pending == 1  # the failed add left nothing behind
