"""Script calls made together share a round trip; each caller still gets its own result or error. Every test runs
both ways a batch can travel: over the client's fast lane, and as a redis-py pipeline (targets without a lane)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.redis.coalescing import ScriptCoalescer
from conveyor.redis.connection import RedisTarget
from conveyor.redis.lane import close_lane, lane_for

ECHO = "if ARGV[1] == 'bad' then return redis.error_reply('bad input') end return ARGV[1]"


@pytest.fixture(params=["lane", "pipeline"])
async def client(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Redis]:
    client = RedisTarget(url=redis_url).client()
    lane_for(client).usable = request.param == "lane"
    yield client
    close_lane(client)
    await client.aclose()


async def test_concurrent_calls_each_get_their_own_result(client: Redis) -> None:
    script = client.register_script(ECHO)
    coalescer = ScriptCoalescer(client)
    await client.config_resetstat()  # the session's server counted other tests' commands
    results = await asyncio.gather(*[coalescer.call(script, ["k"], [str(i)]) for i in range(20)])
    assert results == [str(i) for i in range(20)]
    stats = await client.info("commandstats")
    assert "cmdstat_script|exists" not in stats  # no SCRIPT EXISTS before each batch


async def test_an_error_reaches_only_its_caller(client: Redis) -> None:
    script = client.register_script(ECHO)
    coalescer = ScriptCoalescer(client)
    calls = [coalescer.call(script, ["k"], [arg]) for arg in ("a", "bad", "c")]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == "a"
    assert results[2] == "c"
    assert isinstance(results[1], ResponseError)


async def test_calls_survive_a_script_cache_flush(client: Redis) -> None:
    script = client.register_script(ECHO)
    coalescer = ScriptCoalescer(client)
    assert await coalescer.call(script, ["k"], ["warm"]) == "warm"
    await client.script_flush()  # what a Redis restart does to the script cache
    results = await asyncio.gather(*[coalescer.call(script, ["k"], [str(i)]) for i in range(5)])
    assert results == [str(i) for i in range(5)]


@pytest.mark.parametrize("n", [1, 2])
async def test_single_and_double_calls_work(client: Redis, n: int) -> None:
    script = client.register_script(ECHO)
    coalescer = ScriptCoalescer(client)
    results = await asyncio.gather(*[coalescer.call(script, ["k"], [f"v{i}"]) for i in range(n)])
    assert results == [f"v{i}" for i in range(n)]


async def test_a_killed_lane_connection_loses_no_call(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        before = {c["id"] for c in await client.client_list() if c["name"] == "conveyor-lane"}  # other tests'
        assert await coalescer.call(script, ["k"], ["warm"]) == "warm"
        [ours] = [c["id"] for c in await client.client_list() if c["name"] == "conveyor-lane" and c["id"] not in before]
        await client.client_kill_filter(_id=ours)
        results = await asyncio.gather(*[coalescer.call(script, ["k"], [str(i)]) for i in range(5)])
        assert results == [str(i) for i in range(5)]
    finally:
        close_lane(client)
        await client.aclose()
