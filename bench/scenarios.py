"""The runtime benchmarks. Each scenario runs one implementation (`conveyor` or `stock`) and returns its figures."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio.client import Redis

from bench.common import Producer, WorkerProcess, producer, redis_calls, redis_cpu_s, returned_values

Figures = dict[str, float]
Scenario = Callable[[str, str, Redis], Awaitable[Figures]]

DRAIN_JOBS = 20_000


def fresh_queue() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


async def wait_completed(prod: Producer, n: int, limit_s: float = 300) -> None:
    completed = prod.completed
    deadline = time.monotonic() + limit_s
    while await completed() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {await completed()} of {n} jobs completed")
        await asyncio.sleep(0.01)


async def enqueue(impl: str, url: str, client: Redis) -> Figures:
    """Jobs/s added one by one (awaiting each) and in bulks of 1,000."""
    prod = await producer(impl, url, fresh_queue())
    try:
        n = 3000
        started = time.perf_counter()
        for _ in range(n):
            await prod.add()
        one = n / (time.perf_counter() - started)
        started = time.perf_counter()
        for _ in range(20):
            await prod.add_bulk(1000)
        bulk = 20_000 / (time.perf_counter() - started)
    finally:
        await prod.close()
    await client.flushall()
    return {"enqueue one-by-one (jobs/s)": one, "enqueue bulk (jobs/s)": bulk}


async def drain(impl: str, url: str, client: Redis) -> Figures:
    """One worker process (concurrency 10) drains 20,000 pre-enqueued no-op jobs."""
    queue = fresh_queue()
    prod = await producer(impl, url, queue)
    await prod.pause()
    for _ in range(DRAIN_JOBS // 1000):
        await prod.add_bulk(1000)
    worker = WorkerProcess.start(impl, url, queue, 10, "noop")
    try:
        cpu0, rcpu0, calls0 = worker.cpu_s(), await redis_cpu_s(client), await redis_calls(client)
        started = time.perf_counter()
        await prod.resume()
        await wait_completed(prod, DRAIN_JOBS)
        elapsed = time.perf_counter() - started
        cpu1, rcpu1, calls1 = worker.cpu_s(), await redis_cpu_s(client), await redis_calls(client)
        rss = worker.rss_mib()
    finally:
        worker.stop()
        await prod.close()
    await client.flushall()
    return {
        "drain 20k no-op, 1 process (jobs/s)": DRAIN_JOBS / elapsed,
        "drain: worker CPU (us/job)": (cpu1 - cpu0) / DRAIN_JOBS * 1e6,
        "drain: Redis CPU (us/job)": (rcpu1 - rcpu0) / DRAIN_JOBS * 1e6,
        "drain: Redis commands/job": (calls1 - calls0) / DRAIN_JOBS,
        "worker RSS after drain (MiB)": rss,
    }


async def _throughput(
    impl: str, url: str, client: Redis, processes: int, concurrency: int, handler: str, n: int
) -> float:
    queue = fresh_queue()
    prod = await producer(impl, url, queue)
    await prod.pause()
    for _ in range(n // 1000):
        await prod.add_bulk(1000)
    workers = [WorkerProcess.start(impl, url, queue, concurrency, handler) for _ in range(processes)]
    try:
        started = time.perf_counter()
        await prod.resume()
        await wait_completed(prod, n)
        rate = n / (time.perf_counter() - started)
    finally:
        for worker in workers:
            worker.stop()
        await prod.close()
    await client.flushall()
    return rate


async def scale_out(impl: str, url: str, client: Redis) -> Figures:
    """1 vs 2 worker processes, each at concurrency 10: with a 5 ms I/O handler, and with no-op jobs."""
    io1 = await _throughput(impl, url, client, 1, 10, "io5", 6000)
    io2 = await _throughput(impl, url, client, 2, 10, "io5", 6000)
    noop1 = await _throughput(impl, url, client, 1, 10, "noop", 10_000)
    noop2 = await _throughput(impl, url, client, 2, 10, "noop", 10_000)
    return {"5 ms I/O: 2 processes / 1 (x)": io2 / io1, "no-op: 2 processes / 1 (x)": noop2 / noop1}


async def io_bound(impl: str, url: str, client: Redis) -> Figures:
    """A 10 ms I/O-bound handler at concurrency 50 (ideal: 5,000 jobs/s)."""
    return {"10 ms I/O at concurrency 50 (jobs/s)": await _throughput(impl, url, client, 1, 50, "io10", 10_000)}


async def latency_and_idle(impl: str, url: str, client: Redis) -> Figures:
    """An idle worker: Redis commands/s while idle; pickup latency of 200 jobs 10 ms apart; commands per job at
    100 jobs/s (concurrency 10), with and without the producer's own."""
    queue = fresh_queue()
    prod = await producer(impl, url, queue)
    worker = WorkerProcess.start(impl, url, queue, 10, "start")
    try:
        await asyncio.sleep(2)
        calls0 = await redis_calls(client)
        await asyncio.sleep(10)
        idle_rate = (await redis_calls(client) - calls0 - 1) / 10
        add_calls = await _add_cost(impl, url, client)
        calls0 = await redis_calls(client)
        added = await _add_spaced(prod, 200, 0.01)
        await wait_completed(prod, 200)
        trickle_calls = (await redis_calls(client) - calls0 - 1) / 200
        latencies = sorted(await _pickup_latencies(client, queue, added, 0))
    finally:
        worker.stop()
        await prod.close()
    await client.flushall()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    return {
        "idle worker: Redis commands/s": idle_rate,
        "pickup latency p50 (ms)": statistics.median(latencies),
        "pickup latency p99 (ms)": p99,
        "trickle 100 jobs/s: Redis commands/job, adds included": trickle_calls,
        "trickle 100 jobs/s: worker's Redis commands/job": trickle_calls - add_calls,
    }


async def _add_cost(impl: str, url: str, client: Redis) -> float:
    """Redis commands one `add` costs (Lua-internal calls included), measured on a queue no worker serves: the
    trickle's figure minus this is what the worker spends per job, comparable with the drain's figure."""
    prod = await producer(impl, url, fresh_queue())
    try:
        await prod.add()  # the first add may load the script
        calls0 = await redis_calls(client)
        for _ in range(50):
            await prod.add()
        return (await redis_calls(client) - calls0 - 1) / 50
    finally:
        await prod.close()


async def long_idle(impl: str, url: str, client: Redis, idle_s: float) -> Figures:
    """A worker left idle for `idle_s` (10 minutes for the issue's target): its Redis commands/s over that time,
    then the pickup latency of 5 jobs added half a second apart, against 5 added the same way before the idle.
    Just before the jobs after the idle, the producer and Redis serve another queue for a moment: in use, the
    app and Redis do other work while one queue sits idle, and this VM pages out any process's memory left
    untouched for a minute (see bench/README.md). The worker is not touched."""
    queue = fresh_queue()
    prod = await producer(impl, url, queue)
    other = await producer(impl, url, fresh_queue())
    worker = WorkerProcess.start(impl, url, queue, 10, "start")
    try:
        await asyncio.sleep(2)
        before = await _spaced_pickups(prod, client, queue, 5, 0.5)
        calls0, started = await redis_calls(client), time.monotonic()
        await asyncio.sleep(idle_s)
        idle_rate = (await redis_calls(client) - calls0 - 1) / (time.monotonic() - started)
        for _ in range(5):
            await other.add()
            await asyncio.sleep(0.1)
        after = await _spaced_pickups(prod, client, queue, 5, 0.5)
    finally:
        worker.stop()
        await prod.close()
        await other.close()
    await client.flushall()
    return {
        "long idle: Redis commands/s": idle_rate,
        "pickup before the long idle, median of 5 (ms)": statistics.median(before),
        "pickup after the long idle, median of 5 (ms)": statistics.median(after),
        "pickup after the long idle, slowest of 5 (ms)": max(after),
    }


async def _spaced_pickups(prod: Producer, client: Redis, queue: str, n: int, gap_s: float) -> list[float]:
    """Pickup latency (ms) of `n` jobs added `gap_s` apart to an idle worker."""
    done = len(await returned_values(client, queue))
    added = await _add_spaced(prod, n, gap_s)
    await wait_completed(prod, done + n)
    return await _pickup_latencies(client, queue, added, done)


async def _add_spaced(prod: Producer, n: int, gap_s: float) -> list[float]:
    """Add `n` jobs `gap_s` apart; the time just before each add."""
    added: list[float] = []
    for _ in range(n):
        added.append(time.time())
        await prod.add()
        await asyncio.sleep(gap_s)
    return added


async def _pickup_latencies(client: Redis, queue: str, added: list[float], done_before: int) -> list[float]:
    """Milliseconds from each add to its handler's start (the `start` handler returns it), in the order added."""
    values = await returned_values(client, queue)
    # Ids are random since enqueue retries became idempotent; jobs spaced apart start in the order they were added.
    latest = sorted(values, key=values.__getitem__)[done_before:]
    return [(values[job_id] - t) * 1000 for job_id, t in zip(latest, added, strict=True)]


SCENARIOS: list[Scenario] = [enqueue, drain, scale_out, io_bound, latency_and_idle]
