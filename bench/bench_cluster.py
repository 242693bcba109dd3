"""How throughput scales with shards: drain no-op jobs spread over queues on a Redis Cluster of 1 primary, then
of 3 primaries (no replicas in either: this measures sharding, not replication), and, as the baseline of the same
run, on one plain (non-cluster) server.

    .venv/bin/python -m bench.bench_cluster                 # 30,000 jobs over 3 queues, 2 rounds
    .venv/bin/python -m bench.bench_cluster --jobs 9000 --rounds 1

The queues (`q0`, `q1`, `q2`) hash to the three thirds of the slot space, so on 3 primaries each has a shard of
its own, and on 1 primary they share it. The same worker processes (each serving every queue) drain both; jobs
are enqueued on paused queues, the workers start, and the clock runs from resuming the queues to the last
completion. Prints
jobs/s per layout, the ratio, and each primary's Redis CPU time, which shows where the load went.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.cluster.servers import TestCluster

from conveyor import Conveyor, NewJob, load_settings
from conveyor.redis.embedded import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("q0", "q1", "q2")


async def drain(redis: dict[str, str], jobs: int, processes: int, concurrency: int) -> float:
    """Enqueue `jobs` over the paused queues, start the workers, resume the queues once every worker is ready, and
    return jobs/s until every job completed. `redis` holds the settings that point at Redis (REDIS_CLUSTER_NODES,
    or REDIS_URL)."""
    settings = {name.lower(): value for name, value in redis.items()}
    app = Conveyor(load_settings(**settings, conveyor_queues={q: {} for q in QUEUES}))
    async with app:
        per_queue = jobs // len(QUEUES)
        for queue in QUEUES:
            await app.queue(queue).pause()
            for _ in range(0, per_queue, 1000):
                await app.add_bulk(queue, [NewJob("job", {"n": 1}) for _ in range(1000)], warn_unserved=False)
        env = {**os.environ, "REDIS_URL": "", "REDIS_CLUSTER_NODES": "", **redis, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "bench.cluster_worker", ",".join(QUEUES), str(concurrency)]
        pipe = asyncio.subprocess.PIPE
        workers = [
            await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=pipe) for _ in range(processes)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                await worker.stdout.readline()  # "ready"
            started = time.perf_counter()
            for queue in QUEUES:
                await app.queue(queue).resume()
            total = per_queue * len(QUEUES)
            await _until_completed(app, total, workers)
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                await worker.wait()
    return total / elapsed


async def _until_completed(app: Conveyor, total: int, workers: list[asyncio.subprocess.Process]) -> None:
    done = 0
    while done < total:
        await asyncio.sleep(0.05)
        if any(worker.returncode is not None for worker in workers):
            raise RuntimeError("a worker process exited before the jobs were drained (its stderr says why)")
        done = sum([(await app.queue(queue).counts()).completed for queue in QUEUES])


def redis_cpu(cluster: TestCluster) -> list[float]:
    """Each primary's Redis CPU seconds so far (user + system)."""
    result = []
    for node in cluster.primary_nodes():
        with node.client() as client:
            cpu = client.info("cpu")
            result.append(float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]))
    return result


def measure(primaries: int, args: argparse.Namespace) -> tuple[float, list[float]]:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-cluster-") as root:
        cluster = TestCluster(Path(root), primaries=primaries, replicas_per_primary=0)
        cluster.start()
        try:
            redis = {"REDIS_CLUSTER_NODES": cluster.startup_nodes}
            rate = asyncio.run(drain(redis, args.jobs, args.processes, args.concurrency))
            return rate, redis_cpu(cluster)
        finally:
            cluster.stop()


def measure_single(args: argparse.Namespace) -> float:
    """The same drain on one plain server (the embedded one, over TCP): the baseline."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-single-") as root:
        server = EmbeddedRedis(Path(root), transport="tcp")
        server.start()
        try:
            return asyncio.run(drain({"REDIS_URL": server.url}, args.jobs, args.processes, args.concurrency))
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="worker processes (each serves every queue)")
    parser.add_argument("--concurrency", type=int, default=10, help="per queue, per worker process")
    args = parser.parse_args()
    rates: dict[int, list[float]] = {0: [], 1: [], 3: []}
    for round_no in range(args.rounds):
        rates[0].append(measure_single(args))
        print(f"round {round_no + 1}, one plain server: {rates[0][-1]:,.0f} jobs/s")
        for primaries in (1, 3):
            rate, cpu = measure(primaries, args)
            rates[primaries].append(rate)
            shown = ", ".join(f"{seconds:.1f}" for seconds in cpu)
            print(f"round {round_no + 1}, {primaries} primaries: {rate:,.0f} jobs/s (Redis CPU s per primary: {shown})")
    single, one, three = (statistics.median(rates[n]) for n in (0, 1, 3))
    print(f"median: 1 primary {one:,.0f} jobs/s, 3 primaries {three:,.0f} jobs/s, ratio {three / one:.2f}x")
    print(f"median: one plain server {single:,.0f} jobs/s (cluster of 1 primary: {one / single:.2f}x of it)")
    print(f"machine: {os.cpu_count()} CPUs; workers: {args.processes} processes x {args.concurrency} per queue")


if __name__ == "__main__":
    main()
