"""Script calls made together share a round trip; each caller still gets its own result or error. Every test runs
both ways a batch can travel: over the client's fast lane, and as a redis-py pipeline (targets without a lane)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.redis.coalescing import SEND_AT, ScriptCoalescer
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


async def test_a_full_batch_is_written_before_the_turn_ends(redis_url: str) -> None:
    # Redis works on the first calls of a busy turn while the worker still runs the turn's other jobs: a batch
    # that holds SEND_AT calls goes out at once, the rest at the end of the turn.
    client = RedisTarget(url=redis_url).client()
    watcher = SyncRedis.from_url(redis_url)
    try:
        script = client.register_script("return redis.call('INCR', KEYS[1])")
        coalescer = ScriptCoalescer(client)
        await client.delete("calls")
        assert await coalescer.call(script, ["calls"], []) == 1  # the lane is up and Redis has the script
        seen: list[int] = []

        def within_the_turn() -> None:  # runs after the calls below started, before the turn's own flush
            deadline = time.monotonic() + 2
            while int(watcher.get("calls") or 0) < 1 + SEND_AT and time.monotonic() < deadline:
                time.sleep(0.005)  # the event loop stays in this turn
            time.sleep(0.05)
            seen.append(int(watcher.get("calls") or 0))

        calls = [asyncio.ensure_future(coalescer.call(script, ["calls"], [])) for _ in range(SEND_AT + 1)]
        asyncio.get_running_loop().call_soon(within_the_turn)
        results = await asyncio.gather(*calls)
        assert seen == [1 + SEND_AT]  # the full batch ran; the last call waited for the end of the turn
        assert sorted(results) == list(range(2, SEND_AT + 3))
    finally:
        watcher.close()
        close_lane(client)
        await client.aclose()


async def test_calls_whose_replies_are_lost_with_the_lane_go_the_usual_way(redis_url: str) -> None:
    # The batch is written, then the lane's connection goes before any reply is read: every caller still gets
    # its own result, through redis-py (which connects again), and the next call connects the lane again.
    client = RedisTarget(url=redis_url).client()
    try:
        script = client.register_script(ECHO)
        coalescer = ScriptCoalescer(client)
        assert await coalescer.call(script, ["k"], ["warm"]) == "warm"
        lane = lane_for(client)
        calls = [asyncio.ensure_future(coalescer.call(script, ["k"], [str(i)])) for i in range(SEND_AT)]
        asyncio.get_running_loop().call_soon(lane.close)  # after the full batch was written, before its replies
        assert await asyncio.gather(*calls) == [str(i) for i in range(SEND_AT)]
        assert await coalescer.call(script, ["k"], ["again"]) == "again"  # over a lane connected again
    finally:
        close_lane(client)
        await client.aclose()
