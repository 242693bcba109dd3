"""How throughput scales with shards: drain no-op jobs spread over queues on a Redis Cluster of 1 primary, then
of 3 primaries (no replicas in either: this measures sharding, not replication).

    .venv/bin/python -m bench.bench_cluster                 # 30,000 jobs over 3 queues, 2 rounds
    .venv/bin/python -m bench.bench_cluster --jobs 9000 --rounds 1

The queues (`q0`, `q1`, `q2`) hash to the three thirds of the slot space, so on 3 primaries each has a shard of
its own, and on 1 primary they share it. The same worker processes (each serving every queue) drain both; jobs
are enqueued before the workers start, and the clock runs from the workers' start to the last completion. Prints
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

ROOT = Path(__file__).resolve().parents[1]
QUEUES = ("q0", "q1", "q2")


async def drain(nodes: str, jobs: int, processes: int, concurrency: int) -> float:
    """Enqueue `jobs` over the queues, start the workers, and return jobs/s until every one completed."""
    app = Conveyor(load_settings(redis_cluster_nodes=nodes, conveyor_queues={q: {} for q in QUEUES}))
    async with app:
        per_queue = jobs // len(QUEUES)
        for queue in QUEUES:
            for _ in range(0, per_queue, 1000):
                await app.add_bulk(queue, [NewJob("job", {"n": 1}) for _ in range(1000)], warn_unserved=False)
        env = {**os.environ, "REDIS_URL": "", "REDIS_CLUSTER_NODES": nodes, "PYTHONPATH": str(ROOT)}
        args = [sys.executable, "-m", "bench.cluster_worker", ",".join(QUEUES), str(concurrency)]
        started = time.perf_counter()
        workers = [
            await asyncio.create_subprocess_exec(*args, env=env, cwd=ROOT, stdout=asyncio.subprocess.DEVNULL)
            for _ in range(processes)
        ]
        try:
            total = per_queue * len(QUEUES)
            await _until_completed(app, total)
            elapsed = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                await worker.wait()
    return total / elapsed


async def _until_completed(app: Conveyor, total: int) -> None:
    done = 0
    while done < total:
        await asyncio.sleep(0.05)
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
            rate = asyncio.run(drain(cluster.startup_nodes, args.jobs, args.processes, args.concurrency))
            return rate, redis_cpu(cluster)
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=2, help="worker processes (each serves every queue)")
    parser.add_argument("--concurrency", type=int, default=10, help="per queue, per worker process")
    args = parser.parse_args()
    rates: dict[int, list[float]] = {1: [], 3: []}
    for round_no in range(args.rounds):
        for primaries in (1, 3):
            rate, cpu = measure(primaries, args)
            rates[primaries].append(rate)
            shown = ", ".join(f"{seconds:.1f}" for seconds in cpu)
            print(f"round {round_no + 1}, {primaries} primaries: {rate:,.0f} jobs/s (Redis CPU s per primary: {shown})")
    one, three = statistics.median(rates[1]), statistics.median(rates[3])
    print(f"median: 1 primary {one:,.0f} jobs/s, 3 primaries {three:,.0f} jobs/s, ratio {three / one:.2f}x")
    print(f"machine: {os.cpu_count()} CPUs; workers: {args.processes} processes x {args.concurrency} per queue")


if __name__ == "__main__":
    main()
