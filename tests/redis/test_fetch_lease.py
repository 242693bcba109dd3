"""The lease of a fetch sent behind a blocking wait: it runs only if the wait returns within the lease, and a wait
that outlasted it leaves the wake-up marker for another worker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from conveyor.queue.options import JobOptions
from conveyor.queue.queue import Queue
from conveyor.redis.lane import DirectLane, close_lane, lane_for
from conveyor.redis.scripts import LEASED_FETCH, FetchedJob, script_source


@pytest.fixture
async def queue(redis_url: str) -> AsyncIterator[Queue]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield Queue(client, "leased")
    close_lane(client)
    await client.aclose()


@pytest.fixture
async def fetcher(redis_url: str) -> AsyncIterator[DirectLane]:
    """The fetcher's own connection (a lane of a client of its own, as a worker's blocking client has)."""
    client = Redis.from_url(redis_url, decode_responses=True)
    lane = lane_for(client, name="conveyor-fetcher")
    yield lane
    close_lane(client)
    await client.aclose()


async def wait_and_fetch(queue: Queue, lane: DirectLane, lease_ms: int, wait_s: float = 5) -> FetchedJob:
    await queue.client.script_load(script_source(LEASED_FETCH))
    return await queue.scripts.wait_then_move_to_active(
        lane, wait_s=wait_s, token="t1", lock_ms=5000, lease_ms=lease_ms, worker="w", timestamp=0
    )


async def commands_since_reset(client: Redis) -> int:
    """Commands Redis ran since CONFIG RESETSTAT, those of Lua scripts included (INFO itself left out)."""
    stats = await client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k not in ("cmdstat_info", "cmdstat_config|resetstat"))


async def test_a_job_that_comes_within_the_lease_is_taken(queue: Queue, fetcher: DirectLane) -> None:
    waiting = asyncio.ensure_future(wait_and_fetch(queue, fetcher, lease_ms=2000))
    await asyncio.sleep(0.2)
    job_id = await queue.add("job", {})
    fetched = await asyncio.wait_for(waiting, 5)
    assert fetched.job_id == job_id
    assert await queue.client.get(queue.keys.lock(job_id)) == "t1"
    assert not await queue.client.exists(queue.keys.fetch_lease("t1"))  # ended with the fetch


async def test_a_job_that_comes_after_the_lease_is_left_waiting_with_its_marker(
    queue: Queue, fetcher: DirectLane
) -> None:
    waiting = asyncio.ensure_future(wait_and_fetch(queue, fetcher, lease_ms=200))
    await asyncio.sleep(0.5)  # the fetcher's process could have stopped here: its fetch must not run
    job_id = await queue.add("job", {})
    fetched = await asyncio.wait_for(waiting, 5)
    assert fetched.job_id is None
    counts = await queue.counts()
    assert (counts.active, counts.waiting) == (0, 1)
    assert not await queue.client.exists(queue.keys.lock(job_id))
    assert await queue.client.zrange(queue.keys.marker, 0, -1) == ["0"]  # another worker is woken for it


async def test_a_delayed_job_that_comes_after_the_lease_leaves_its_delay_marker(
    queue: Queue, fetcher: DirectLane
) -> None:
    # The lapsed check reads the wait, prioritized, delayed and marker keys by their place among moveToActive's
    # KEYS: a delayed job's marker (member "1", scored with its due time) must be put back as BullMQ writes it.
    waiting = asyncio.ensure_future(wait_and_fetch(queue, fetcher, lease_ms=200))
    await asyncio.sleep(0.5)
    job_id = await queue.add("job", {}, JobOptions(delay_ms=60_000))
    fetched = await asyncio.wait_for(waiting, 5)
    assert fetched.job_id is None
    due_ms = int(await queue.client.hget(queue.keys.job(job_id), "timestamp")) + 60_000
    assert await queue.client.zrange(queue.keys.marker, 0, -1, withscores=True) == [("1", due_ms)]
    assert await queue.client.zscore(queue.keys.delayed, job_id) is not None  # still delayed, not taken


async def test_the_lease_costs_a_fetch_two_commands(queue: Queue, fetcher: DirectLane) -> None:
    # One to start the lease, one to end it: a trickle of jobs to an idle worker pays them for every job.
    await queue.scripts.move_to_active(token="t0", lock_ms=5000, worker="w", timestamp=0)  # loads the script
    await queue.client.script_load(script_source(LEASED_FETCH))
    await fetcher.connection_id()  # connected
    await queue.add("job", {})
    await queue.client.config_resetstat()
    await queue.scripts.move_to_active(token="t1", lock_ms=5000, worker="w", timestamp=0)
    plain = await commands_since_reset(queue.client)  # moveToActive taking a job, its own calls included
    await queue.add("job", {})
    await queue.client.config_resetstat()
    fetched = await queue.scripts.wait_then_move_to_active(
        fetcher, wait_s=5, token="t2", lock_ms=5000, lease_ms=2000, worker="w", timestamp=0
    )
    assert fetched.job_id is not None
    assert await commands_since_reset(queue.client) <= plain + 3  # BZPOPMIN, and the lease's SET and DEL


async def test_a_script_redis_forgot_is_loaded_for_the_next_wait(queue: Queue, fetcher: DirectLane) -> None:
    job_id = await queue.add("job", {})
    await queue.client.script_flush()
    with pytest.raises(NoScriptError):
        await queue.scripts.wait_then_move_to_active(
            fetcher, wait_s=0.1, token="t1", lock_ms=5000, lease_ms=2000, worker="w", timestamp=0
        )
    fetched = await queue.scripts.wait_then_move_to_active(
        fetcher, wait_s=0.1, token="t2", lock_ms=5000, lease_ms=2000, worker="w", timestamp=0
    )
    assert fetched.job_id == job_id
