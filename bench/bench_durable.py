"""What durable mode costs: enqueue throughput with and without `WAIT 1` (CONVEYOR_REDIS_WAIT_REPLICAS=1).

Starts a master, a replica and three Sentinels on this machine (the fixture of the failover tests) and adds jobs
to an empty queue in three ways: one by one, each awaited; 50 producers at once; bulks of 500. Each through the
master's URL and through Sentinel, with and without WAIT, interleaved over the rounds; the table shows medians.

    .venv/bin/python -m bench.bench_durable [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.faults.sentinel_set import SentinelSet

from conveyor import Conveyor, NewJob, load_settings

QUEUE = "bench"
ONE_BY_ONE = 2000
CONCURRENT = 5000
PRODUCERS = 50
BULK_TOTAL = 20_000
BULK_SIZE = 500


async def one_by_one(app: Conveyor) -> int:
    queue = app.queue(QUEUE)
    for n in range(ONE_BY_ONE):
        await queue.add("noop", {"n": n})
    return ONE_BY_ONE


async def concurrent(app: Conveyor) -> int:
    queue = app.queue(QUEUE)
    per = CONCURRENT // PRODUCERS

    async def produce() -> None:
        for n in range(per):
            await queue.add("noop", {"n": n})

    await asyncio.gather(*(produce() for _ in range(PRODUCERS)))
    return per * PRODUCERS


async def bulks(app: Conveyor) -> int:
    queue = app.queue(QUEUE)
    for _ in range(BULK_TOTAL // BULK_SIZE):
        await queue.add_bulk([NewJob("noop", {"n": n}) for n in range(BULK_SIZE)])
    return BULK_TOTAL


SCENARIOS: dict[str, Callable[[Conveyor], Awaitable[int]]] = {
    "one by one": one_by_one,
    f"{PRODUCERS} producers": concurrent,
    f"bulks of {BULK_SIZE}": bulks,
}


async def measure(servers: SentinelSet, via: str, durable: bool, scenario: str) -> float:
    target = {"redis_sentinels": servers.sentinels_setting} if via == "sentinel" else {}
    if via == "url":
        target = {"redis_url": f"redis://127.0.0.1:{servers.master().port}/0"}
    wait = {"conveyor_redis_wait_replicas": 1, "conveyor_redis_wait_timeout_ms": 1000} if durable else {}
    settings = load_settings(_env_file=None, conveyor_queues={QUEUE: {}}, **target, **wait)
    app = Conveyor(settings)
    await app.connect()
    try:
        await app.client.flushall()
        began = time.perf_counter()
        jobs = await SCENARIOS[scenario](app)
        return jobs / (time.perf_counter() - began)
    finally:
        await app.close()


async def run(rounds: int) -> dict[tuple[str, str, bool], list[float]]:
    results: dict[tuple[str, str, bool], list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-durable-") as work:
        servers = SentinelSet(Path(work)).start()
        try:
            for _ in range(rounds):
                for scenario in SCENARIOS:
                    for via in ("url", "sentinel"):
                        for durable in (False, True):
                            results[(scenario, via, durable)].append(await measure(servers, via, durable, scenario))
        finally:
            servers.stop()
    return results


def table(results: dict[tuple[str, str, bool], list[float]]) -> str:
    lines = ["| enqueue | via | jobs/s without WAIT | jobs/s with WAIT 1 | ratio |", "|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        for via in ("url", "sentinel"):
            plain = statistics.median(results[(scenario, via, False)])
            durable = statistics.median(results[(scenario, via, True)])
            lines.append(f"| {scenario} | {via} | {plain:,.0f} | {durable:,.0f} | {durable / plain:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    print(table(asyncio.run(run(parser.parse_args().rounds))))


if __name__ == "__main__":
    main()
