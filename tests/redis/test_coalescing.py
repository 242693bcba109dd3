"""Script calls made together share a round trip; each caller still gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ResponseError

from conveyor.redis.coalescing import ScriptCoalescer
from conveyor.redis.connection import RedisTarget

ECHO = "if ARGV[1] == 'bad' then return redis.error_reply('bad input') end return ARGV[1]"


async def test_concurrent_calls_each_get_their_own_result(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        await client.config_resetstat()  # the session's server counted other tests' commands
        results = await asyncio.gather(*[coalescer.call(script, ["k"], [str(i)]) for i in range(20)])
        assert results == [str(i) for i in range(20)]
        stats = await client.info("commandstats")
        assert "cmdstat_script|exists" not in stats  # no SCRIPT EXISTS before each pipeline
    finally:
        await client.aclose()


async def test_an_error_reaches_only_its_caller(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        calls = [coalescer.call(script, ["k"], [arg]) for arg in ("a", "bad", "c")]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[0] == "a"
        assert results[2] == "c"
        assert isinstance(results[1], ResponseError)
    finally:
        await client.aclose()


async def test_calls_survive_a_script_cache_flush(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        assert await coalescer.call(script, ["k"], ["warm"]) == "warm"
        await client.script_flush()  # what a Redis restart does to the script cache
        results = await asyncio.gather(*[coalescer.call(script, ["k"], [str(i)]) for i in range(5)])
        assert results == [str(i) for i in range(5)]
    finally:
        await client.aclose()


@pytest.mark.parametrize("n", [1, 2])
async def test_single_and_double_calls_work(redis_url: str, n: int) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        assert await asyncio.gather(*[coalescer.call(script, ["k"], [f"v{i}"]) for i in range(n)]) == [
            f"v{i}" for i in range(n)
        ]
    finally:
        await client.aclose()
