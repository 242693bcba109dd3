"""Run the runtime benchmarks: `python -m bench.run [--rounds 3] [--only drain,enqueue] [--long-idle 600]`.

Starts its own Redis, runs every scenario for the stock `bullmq` Worker/Queue (the baseline) and for Conveyor,
interleaved, `--rounds` times; prints the median of each figure, Conveyor's ratio to the baseline, and the
issue's target. `--long-idle S` then leaves a worker of each idle for S seconds, once (it takes 2 x S).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

import uvloop
from redis.asyncio.client import Redis

from bench.scenarios import SCENARIOS, Figures, long_idle
from conveyor.redis.embedded import EmbeddedRedis

# figure -> (target text, check on Conveyor's median and its ratio to the baseline)
TARGETS = {
    "enqueue one-by-one (jobs/s)": (">= 10,000", lambda v, r: v >= 10_000),
    "enqueue bulk (jobs/s)": (">= stock", lambda v, r: r >= 1.0),
    "drain 20k no-op, 1 process (jobs/s)": (">= 3x stock", lambda v, r: r >= 3.0),
    "5 ms I/O: 2 processes / 1 (x)": (">= 1.8", lambda v, r: v >= 1.8),
    "pickup latency p50 (ms)": ("<= 1", lambda v, r: v <= 1.0),
    "pickup latency p99 (ms)": ("<= 2", lambda v, r: v <= 2.0),
    "trickle 100 jobs/s: worker's Redis commands/job": ("<= 30", lambda v, r: v <= 30),
    "idle worker: Redis commands/s": ("<= 2", lambda v, r: v <= 2),
    "10 ms I/O at concurrency 50 (jobs/s)": (">= 4,500", lambda v, r: v >= 4500),
    "worker RSS after drain (MiB)": ("<= 60", lambda v, r: v <= 60),
    "long idle: Redis commands/s": ("<= 2", lambda v, r: v <= 2),
    "pickup after the long idle, median of 5 (ms)": ("<= 2", lambda v, r: v <= 2.0),
}


async def run(rounds: int, only: set[str], long_idle_s: float) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), transport="tcp") as server:
        client = Redis.from_url(server.url, decode_responses=True)
        try:
            for round_no in range(rounds):
                for scenario in SCENARIOS:
                    if only and scenario.__name__ not in only:
                        continue
                    for impl in ("stock", "conveyor"):
                        print(f"round {round_no + 1}/{rounds}: {scenario.__name__} ({impl})", flush=True)
                        figures: Figures = await scenario(impl, server.url, client)
                        for name, value in figures.items():
                            results[name][impl].append(value)
            for impl in ("stock", "conveyor") if long_idle_s else ():
                print(f"long idle, {long_idle_s:.0f} s ({impl})", flush=True)
                for name, value in (await long_idle(impl, server.url, client, long_idle_s)).items():
                    results[name][impl].append(value)
        finally:
            await client.aclose()
    return results


def table(results: dict[str, dict[str, list[float]]], rounds: int, long_idle_s: float) -> str:
    lines = [
        f"Median of {rounds} interleaved runs; {platform.machine()}, {platform.python_version()}, "
        f"{__import__('os').cpu_count()} cores.",
        *([f"The long-idle figures: one run each, {long_idle_s:.0f} s idle."] if long_idle_s else []),
        "",
        "| figure | stock bullmq | Conveyor | ratio | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, by_impl in results.items():
        stock = statistics.median(by_impl["stock"])
        ours = statistics.median(by_impl["conveyor"])
        ratio = ours / stock if stock else float("inf")
        target, check = TARGETS.get(name, ("report", lambda v, r: True))
        met = "yes" if check(ours, ratio) else "NO"
        lines.append(f"| {name} | {stock:,.2f} | {ours:,.2f} | {ratio:.2f} | {target} | {met} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--long-idle", type=float, default=0, help="seconds a worker is left idle, once (0: skip)")
    args = parser.parse_args()
    # uvloop, as Conveyor's worker and CLI run and as uvicorn picks by default: both producers share this loop.
    results = uvloop.run(run(args.rounds, {s for s in args.only.split(",") if s}, args.long_idle))
    print()
    print(table(results, args.rounds, args.long_idle))


if __name__ == "__main__":
    main()
