"""Redis out of memory (`maxmemory` reached, policy `noeviction`): producing fails with `RedisOutOfMemoryError`,
which says what was written and what to do, instead of redis-py's raw `ResponseError`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import pytest
from redis.client import Redis as SyncRedis

from conveyor import Conveyor, NewJob, SyncConveyor, load_settings
from conveyor.queue.flows import FlowJob, Flows
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import RedisOutOfMemoryError
from tests.queue.conftest import QUEUE
from tests.support import fill_up

OwnRedisFactory = Callable[..., EmbeddedRedis]


@pytest.fixture
async def app(own_redis: OwnRedisFactory) -> AsyncIterator[Conveyor]:
    """A connected app on a private Redis (its memory limit is the test's to change)."""
    conveyor = Conveyor(load_settings(redis_url=own_redis().url))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


def assert_says_what_to_do(error: RedisOutOfMemoryError, written: str) -> None:
    assert written in str(error)
    assert "maxmemory" in str(error)
    assert "drain queues" in str(error)


async def test_add_to_a_full_redis_raises_out_of_memory_and_writes_nothing(app: Conveyor) -> None:
    await fill_up(app.client)
    with pytest.raises(RedisOutOfMemoryError) as caught:
        await app.add(QUEUE, "ok", {"n": 1})
    assert_says_what_to_do(caught.value, "nothing was written")
    assert (await app.queue(QUEUE).counts()).pending == 0


async def test_add_bulk_to_a_full_redis_raises_out_of_memory_and_writes_nothing(app: Conveyor) -> None:
    await fill_up(app.client)
    with pytest.raises(RedisOutOfMemoryError) as caught:
        await app.add_bulk(QUEUE, [NewJob("ok"), NewJob("ok")])
    assert_says_what_to_do(caught.value, "nothing was written")
    assert (await app.queue(QUEUE).counts()).pending == 0


async def test_add_bulk_that_fills_redis_on_the_way_says_how_many_jobs_were_written(app: Conveyor) -> None:
    await fill_up(app.client, headroom_bytes=1_000_000)  # the pipeline in flight takes some: 58 jobs fit here
    with pytest.raises(RedisOutOfMemoryError) as caught:
        await app.add_bulk(QUEUE, [NewJob("ok", {"blob": "x" * 10_000}) for _ in range(300)])
    written = (await app.queue(QUEUE).counts()).pending
    said = re.search(r"the first (\d+) of the batch were written, and later ones may have been", str(caught.value))
    assert said is not None, caught.value
    assert 0 < int(said.group(1)) <= written < 300
    assert_says_what_to_do(caught.value, "look before adding them again")


async def test_a_flow_added_to_a_full_redis_raises_out_of_memory_and_writes_nothing(app: Conveyor) -> None:
    await fill_up(app.client)
    flow = FlowJob(QUEUE, "ok", {"step": 2}, children=[FlowJob(QUEUE, "ok", {"step": 1})])
    with pytest.raises(RedisOutOfMemoryError) as caught:
        await Flows.of(app).add(flow)
    assert_says_what_to_do(caught.value, "nothing was written")
    assert (await app.queue(QUEUE).counts()).waiting_children == 0
    assert (await app.queue(QUEUE).counts()).pending == 0


def test_a_sync_producer_gets_the_same_out_of_memory_error(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    with SyncRedis.from_url(server.url) as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
    facade = SyncConveyor(Conveyor(load_settings(redis_url=server.url)))
    try:
        with pytest.raises(RedisOutOfMemoryError, match="nothing was written"):
            facade.add(QUEUE, "ok", {"n": 1})
    finally:
        facade.close()
