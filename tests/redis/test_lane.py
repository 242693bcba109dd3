"""The fast lane for script calls: one plain connection of its own, with the usual path as its fallback."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.queue.queue import Queue
from conveyor.redis.connection import RedisTarget
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import RedisUnavailableError
from conveyor.redis.lane import close_lane, lane_for

OwnRedisFactory = Callable[..., EmbeddedRedis]  # the `own_redis` fixture


@pytest.fixture(params=["tcp", "unix"])
async def served(request: pytest.FixtureRequest, own_redis: OwnRedisFactory) -> AsyncIterator[tuple[Redis, Queue]]:
    """A client of a password-protected server over TCP or a unix socket, and a queue using it."""
    server = own_redis(transport=request.param)
    client = RedisTarget(url=server.url).client()
    yield client, Queue(client, "lane")
    close_lane(client)
    await client.aclose()


async def lane_clients(client: Redis) -> list[dict[str, Any]]:
    return [c for c in await client.client_list() if c["name"] == "conveyor-lane"]


async def test_script_calls_go_over_one_authenticated_lane_connection(served: tuple[Redis, Queue]) -> None:
    client, queue = served
    job_id = await queue.add("job", {"n": 1})
    assert (await queue.get_job(job_id)).data == {"n": 1}
    lanes = await lane_clients(client)
    assert len(lanes) == 1
    assert lanes[0]["cmd"] == "evalsha"


async def test_concurrent_callers_share_the_lane_and_each_gets_its_own_reply(served: tuple[Redis, Queue]) -> None:
    client, queue = served
    ids = await asyncio.gather(*(queue.add("job", {"i": i}) for i in range(300)))
    assert len(set(ids)) == 300
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(queue.keys.job(job_id), "data")
    assert await pipe.execute() == [f'{{"i":{i}}}' for i in range(300)]
    assert len(await lane_clients(client)) == 1


async def test_a_forgotten_script_is_loaded_again(served: tuple[Redis, Queue]) -> None:
    client, queue = served
    await queue.add("job", {})
    await client.script_flush()
    job_id = await queue.add("job", {"after": "flush"})
    assert (await queue.get_job(job_id)).data == {"after": "flush"}


async def test_a_killed_lane_connection_costs_no_call_and_is_replaced(served: tuple[Redis, Queue]) -> None:
    client, queue = served
    await queue.add("job", {})
    [lane] = await lane_clients(client)
    await client.client_kill_filter(_id=lane["id"])
    first = await queue.add("job", {"after": "kill"})  # the lane notices, the usual path runs the call
    second = await queue.add("job", {"and": "again"})  # a new lane connection
    assert (await queue.get_job(first)).data == {"after": "kill"}
    assert (await queue.get_job(second)).data == {"and": "again"}
    lanes = await lane_clients(client)
    assert len(lanes) == 1
    assert lanes[0]["id"] != lane["id"]


async def test_an_error_reply_is_raised_and_the_lane_stays_usable(served: tuple[Redis, Queue]) -> None:
    client, queue = served
    failing = client.register_script("return redis.error_reply('ERR no such thing')")
    with pytest.raises(ResponseError, match="no such thing"):
        await lane_for(client).run(failing, [], [])
    [before] = await lane_clients(client)
    await queue.add("job", {})
    [after] = await lane_clients(client)
    assert before["id"] == after["id"]


def test_tls_targets_keep_the_usual_path() -> None:
    client = Redis.from_url("rediss://127.0.0.1:1/0")
    assert not lane_for(client).usable
    assert lane_for(Redis.from_url("redis://127.0.0.1:1/0")).usable


async def test_a_wrong_password_is_reported_the_usual_way(own_redis: OwnRedisFactory) -> None:
    server = own_redis(transport="tcp")
    client = RedisTarget(host="127.0.0.1", port=server.port or 0, password="wrong-secret").client()
    try:
        with pytest.raises(RedisUnavailableError) as caught:
            await Queue(client, "lane").add("job", {})
    finally:
        close_lane(client)
        await client.aclose()
    assert "wrong-secret" not in str(caught.value)


def test_a_lane_does_not_keep_its_client_alive() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0")
    lane_for(client)
    gone = weakref.ref(client)
    del client
    gc.collect()
    assert gone() is None
