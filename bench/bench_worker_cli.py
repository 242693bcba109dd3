"""The worker as users run it: `python -m bench.bench_worker_cli [--rounds 3] [--only drain,startup,pickup,enqueue]`.

On one Redis started here (the embedded `redis-server`, on its unix socket as the embedded default serves every
worker; `--transport tcp` for a port), in interleaved rounds (the order of the workers rotates each round):

- **drain**: N pre-enqueued default-priority no-op jobs (`Conveyor.add_bulk` on a paused queue), drained by
  each kind of worker (see `bench/worker_kinds.py`: `conveyor worker --app`, the bare runtime, Node BullMQ 5 and
  6) at concurrency 10: jobs/s, the worker's CPU per job (from /proc), Redis's CPU per job, the worker's RSS after
  the drain (VmRSS);
- **startup**: one job already waiting, a worker spawned: seconds from the spawn to the job's `finishedOn`;
- **pickup**: 200 jobs added 10 ms apart to an idle worker whose handler returns its start time: p50 and p99 of
  the time from just before `add` to the handler's start;
- **enqueue**: 3,000 jobs added one by one through `Conveyor.add` (each awaited): jobs/s and the producer's CPU
  per add; beside it, in the same round, huey's one-by-one enqueue (a `RedisHuey` task called 3,000 times, as
  huey users enqueue; huey is in the dev lock for this baseline only), and the pinned add script alone (see
  `bench/floors.py`);
- **libraries**: the RSS of a process that imports what `conveyor worker` imports but Conveyor (`bench/floors.py`).

Prints the medians per worker, `conveyor worker`'s ratios to the Node workers and to the bare runtime, and the
targets of issue 18. `--before DIR` adds `conveyor worker` run from another source tree (an export of an older
commit's `src/`) as one more worker, for before/after figures in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import uvloop
from redis.asyncio.client import Redis

from bench.cli_app import QUEUE
from bench.common import ConveyorProducer, redis_cpu_s
from bench.floors import add_script_alone, libraries_rss_mib, worker_library_modules
from bench.scenarios import _add_spaced, _pickup_latencies, wait_completed
from bench.worker_kinds import LABELS, WorkerKinds
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.keys import QueueKeys

Results = dict[str, dict[str, list[float]]]  # figure -> worker kind -> one value per round
BULK = 1000
PICKUP_JOBS = 200
ENQUEUE_JOBS = 3000


class Bench:
    """One run: a Redis, the worker kinds, and the figures collected so far."""

    def __init__(self, url: str, kinds: WorkerKinds, jobs: int) -> None:
        self.url = url
        self.kinds = kinds
        self.jobs = jobs
        self.client = Redis.from_url(url, decode_responses=True)
        self.results: Results = defaultdict(lambda: defaultdict(list))

    def record(self, kind: str, figures: dict[str, float]) -> None:
        for name, value in figures.items():
            self.results[name][kind].append(value)

    async def producer(self) -> ConveyorProducer:
        return await ConveyorProducer(self.url, QUEUE).start()

    async def drain(self, kind: str) -> None:
        prod = await self.producer()
        await prod.pause()
        for _ in range(self.jobs // BULK):
            await prod.add_bulk(BULK)
        worker = self.kinds.start(kind, self.url, "noop")
        try:
            await asyncio.sleep(0.3)  # every kind gets the same moment to settle once it says it serves
            cpu0, rcpu0 = worker.cpu_s(), await redis_cpu_s(self.client)
            started = time.perf_counter()
            await prod.resume()
            await wait_completed(prod, self.jobs)
            elapsed = time.perf_counter() - started
            cpu1, rcpu1 = worker.cpu_s(), await redis_cpu_s(self.client)
            rss = worker.rss_mib()
        finally:
            worker.stop()
            await prod.close()
        await self.client.flushall()
        self.record(kind, {
            "drain no-op, concurrency 10 (jobs/s)": self.jobs / elapsed,
            "drain: worker CPU (us/job)": (cpu1 - cpu0) / self.jobs * 1e6,
            "drain: Redis CPU (us/job)": (rcpu1 - rcpu0) / self.jobs * 1e6,
            "worker RSS after the drain (MiB)": rss,
        })  # fmt: skip

    async def startup(self, kind: str) -> None:
        prod = await self.producer()
        job_id = await prod.app.add(QUEUE, "job", {"n": 1})
        spawned = time.time()
        proc = self.kinds.spawn(kind, self.url, "noop")
        try:
            await wait_completed(prod, 1, limit_s=30)
            finished_ms = await self.client.hget(QueueKeys("bull", QUEUE).job(job_id), "finishedOn")
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
            await prod.close()
        await self.client.flushall()
        self.record(kind, {"worker start to first job done (s)": int(finished_ms) / 1000 - spawned})

    async def pickup(self, kind: str) -> None:
        prod = await self.producer()
        worker = self.kinds.start(kind, self.url, "start")
        try:
            await asyncio.sleep(2)  # past start-up work (registration, first sweeps)
            added = await _add_spaced(prod, PICKUP_JOBS, 0.01)
            await wait_completed(prod, PICKUP_JOBS)
            latencies = sorted(await _pickup_latencies(self.client, QUEUE, added, 0))
        finally:
            worker.stop()
            await prod.close()
        await self.client.flushall()
        self.record(kind, {
            "pickup latency p50 (ms)": statistics.median(latencies),
            "pickup latency p99 (ms)": latencies[int(len(latencies) * 0.99) - 1],
        })  # fmt: skip

    def libraries(self, modules: list[str]) -> None:
        self.record("libs", {"worker RSS after the drain (MiB)": libraries_rss_mib(self.kinds, modules)})

    async def enqueue(self) -> None:
        prod = await self.producer()
        try:
            await prod.add()  # the first add loads the script
            rcpu0, cpu0, started = await redis_cpu_s(self.client), time.process_time(), time.perf_counter()
            for _ in range(ENQUEUE_JOBS):
                await prod.add()
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
            redis_cpu = await redis_cpu_s(self.client) - rcpu0
        finally:
            await prod.close()
        await self.client.flushall()
        self.record("cli", _enqueue_figures(elapsed, cpu, redis_cpu))
        rcpu0 = await redis_cpu_s(self.client)
        elapsed, cpu = await add_script_alone(self.url, ENQUEUE_JOBS)
        self.record("script", _enqueue_figures(elapsed, cpu, await redis_cpu_s(self.client) - rcpu0))
        await self.client.flushall()
        rcpu0 = await redis_cpu_s(self.client)
        elapsed, cpu = _huey_enqueue(self.url)
        self.record("huey", _enqueue_figures(elapsed, cpu, await redis_cpu_s(self.client) - rcpu0))
        await self.client.flushall()


def _enqueue_figures(elapsed: float, cpu: float, redis_cpu: float) -> dict[str, float]:
    return {
        "enqueue one-by-one (jobs/s)": ENQUEUE_JOBS / elapsed,
        "enqueue one-by-one: producer CPU (us/add)": cpu / ENQUEUE_JOBS * 1e6,
        "enqueue one-by-one: Redis CPU (us/add)": redis_cpu / ENQUEUE_JOBS * 1e6,
    }


def _huey_enqueue(url: str) -> tuple[float, float]:
    """Seconds and CPU seconds for huey to enqueue ENQUEUE_JOBS tasks one by one (its calls are synchronous)."""
    from huey import RedisHuey

    huey = RedisHuey("bench-huey", url=url)

    @huey.task()
    def noop(n: int) -> None:
        return None

    noop(0)  # the first call connects
    cpu0, started = time.process_time(), time.perf_counter()
    for _ in range(ENQUEUE_JOBS):
        noop(1)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    huey.storage.conn.close()
    return elapsed, cpu


async def run(args: argparse.Namespace) -> tuple[Results, WorkerKinds]:
    kinds = WorkerKinds(args.before)
    chosen = [k for k in kinds.available if not args.kinds or k in args.kinds]
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), transport=args.transport) as server:
        bench = Bench(server.url, kinds, args.jobs)
        kinds.warm_up(server.url)
        modules = worker_library_modules(kinds, server.url) if "libraries" in args.only else []
        try:
            for round_no in range(args.rounds):
                order = chosen[round_no % len(chosen) :] + chosen[: round_no % len(chosen)]
                for scenario in ("drain", "startup", "pickup"):
                    for kind in order if scenario in args.only else ():
                        print(f"round {round_no + 1}/{args.rounds}: {scenario} ({LABELS[kind]})", flush=True)
                        await getattr(bench, scenario)(kind)
                if "enqueue" in args.only:
                    print(f"round {round_no + 1}/{args.rounds}: enqueue", flush=True)
                    await bench.enqueue()
                if modules:
                    print(f"round {round_no + 1}/{args.rounds}: libraries ({len(modules)} modules)", flush=True)
                    bench.libraries(modules)
        finally:
            await bench.client.aclose()
            shutil.rmtree(kinds.pycache, ignore_errors=True)
    return bench.results, kinds


# figure -> (target, check on conveyor worker's median and the figures of the other kinds)
TARGETS = {
    "drain no-op, concurrency 10 (jobs/s)": (">= 1.0x each Node worker; >= 0.9x bare", "drain"),
    "worker start to first job done (s)": ("<= 0.3", 0.3),
    "worker RSS after the drain (MiB)": ("<= 45", 45.0),
    "pickup latency p50 (ms)": ("<= 1", 1.0),
    "pickup latency p99 (ms)": ("<= 2", 2.0),
    "enqueue one-by-one (jobs/s)": (">= 1.0x huey", "huey"),
}


def _met(name: str, medians: dict[str, float]) -> str:
    target = TARGETS.get(name)
    ours = medians.get("cli")
    if target is None or target[1] is None or ours is None:
        return "report"
    if target[1] == "huey":
        return "yes" if "huey" in medians and ours >= medians["huey"] else "NO"
    if target[1] == "drain":
        nodes = [medians[k] for k in ("node5", "node6") if k in medians]
        ok = all(ours >= n for n in nodes) and ours >= 0.9 * medians.get("bare", 0)
        return "yes" if ok and nodes else "NO"
    return "yes" if ours <= float(target[1]) else "NO"


def table(results: Results, kinds: WorkerKinds, args: argparse.Namespace) -> str:
    shown = [k for k in LABELS if any(k in by_kind for by_kind in results.values())]
    ratios = [k for k in ("node5", "node6", "bare", "huey", "script", "libs") if k in shown]
    missing = "".join(f" {LABELS[k]}: not run ({why})." for k, why in kinds.skipped.items())
    lines = [
        f"Medians of {args.rounds} interleaved rounds, {args.jobs:,} jobs per drain, Redis over {args.transport}; "
        f"{platform.machine()}, "
        f"Python {platform.python_version()}, {os.cpu_count()} cores.{missing}",
        "",
        "| " + " | ".join(["figure", *(LABELS[k] for k in shown), *(f"cli / {LABELS[k]}" for k in ratios)])
        + " | target | met |",
        "|---|" + "---:|" * (len(shown) + len(ratios)) + "---|---|",
    ]  # fmt: skip
    for name, by_kind in results.items():
        medians = {k: statistics.median(v) for k, v in by_kind.items()}
        cells = [f"{medians[k]:,.2f}" if k in medians else "" for k in shown]
        ours = medians.get("cli")
        cells += [f"{ours / medians[k]:.2f}" if ours and medians.get(k) else "" for k in ratios]
        target = TARGETS.get(name, ("report", None))[0]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {target} | {_met(name, medians)} |")
    return "\n".join(lines)


def floors(results: Results) -> list[str]:
    """The floors of `bench/floors.py` beside the targets they bound, from the medians."""
    lines = []
    enqueue = {k: statistics.median(v) for k, v in results.get("enqueue one-by-one (jobs/s)", {}).items()}
    if {"script", "huey"} <= enqueue.keys():
        lines.append(
            f"- One-by-one enqueue: the pinned add script alone ran at {enqueue['script']:,.0f}/s, "
            f"{enqueue['script'] / enqueue['huey']:.2f}x huey's {enqueue['huey']:,.0f}/s; `Conveyor.add` at "
            f"{enqueue.get('cli', 0) / enqueue['script']:.2f}x that floor."
        )
    rss = {k: statistics.median(v) for k, v in results.get("worker RSS after the drain (MiB)", {}).items()}
    if "libs" in rss:
        lines.append(
            f"- Worker RSS: the worker's libraries alone take {rss['libs']:.1f} MiB, against the target's "
            f"{TARGETS['worker RSS after the drain (MiB)'][1]:g}"
            + (f"; `conveyor worker` after the drain: {rss['cli']:.1f}." if "cli" in rss else ".")
        )
    return ["", "Floors under the targets (bench/floors.py):", *lines] if lines else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain (a multiple of 1,000)")
    parser.add_argument("--only", default="drain,startup,pickup,enqueue,libraries", help="comma-separated scenarios")
    parser.add_argument("--kinds", default="", help="workers: cli,before,bare,node5,node6 (default: all)")
    parser.add_argument(
        "--transport", choices=("unix", "tcp"), default="unix", help="how every worker reaches the embedded Redis"
    )
    parser.add_argument("--before", type=Path, default=None, help="also run `conveyor worker` from this source tree")
    args = parser.parse_args()
    args.only = {s for s in args.only.split(",") if s}
    args.kinds = {k for k in args.kinds.split(",") if k}
    # The producer adds jobs while no worker runs (pre-enqueued drains, start-up): its "no live worker handles
    # job type" warning is expected here.
    logging.getLogger("conveyor.app.conveyor").setLevel(logging.ERROR)
    results, kinds = uvloop.run(run(args))
    print()
    print(table(results, kinds, args))
    print("\n".join(floors(results)))
    print("\nEach round, in the order run:")
    for name, by_kind in results.items():
        print(
            f"- {name}: " + "; ".join(f"{LABELS[k]} {', '.join(f'{v:,.2f}' for v in vs)}" for k, vs in by_kind.items())
        )
    print(f"\nWorker logs: {kinds.logs}")
    if args.before is not None:
        print(f"\n`conveyor worker, before` ran from {args.before}.")


if __name__ == "__main__":
    main()
