"""Full index of a real repository of >= 2,000 files: files/s through the queue with 1 and 2 worker processes,
against the indexer called directly in a loop.

    python bench/bench_indexer.py [--repo PATH] [--min-files 2000] [--concurrency 5]

Without `--repo`, the sources of the largest packages installed beside Conveyor are copied into a temporary
folder until it holds `--min-files` indexable files. Redis is an `EmbeddedRedis` in a temporary folder. Each
queue run starts from an empty index and an empty Redis, and is timed from enqueuing the `full-index` job to
its completion (walk, fan-out, every `index-file` child, fan-in); the direct run times the same walk and the
same `CodeIndex.index_file` calls in one loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One measured run."""

    mode: str
    workers: int
    files: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.files / self.seconds if self.seconds else 0.0


def build_repo(target: Path, min_files: int) -> Path:
    """Copy installed packages' sources (largest first) into `target` until it has `min_files` files."""
    from conveyor.indexer.walker import walk_repository

    site = Path(sysconfig.get_paths()["purelib"])
    packages = [p for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".egg-info"))]
    sized = sorted(((sum(1 for _ in walk_repository(p)), p) for p in packages), reverse=True)
    total = 0
    for count, package in sized:
        if total >= min_files:
            break
        shutil.copytree(package, target / package.name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        total += count
    return target


def run_direct(repo: Path, database: Path) -> Run:
    """The indexer without the queue: walk, then index every file in a loop."""
    from conveyor.indexer.store import CodeIndex
    from conveyor.indexer.walker import walk_repository

    index = CodeIndex(database)
    started = time.perf_counter()
    files = list(walk_repository(repo))
    for found in files:
        index.index_file(found.path)
    elapsed = time.perf_counter() - started
    index.close()
    return Run("direct loop", 0, len(files), elapsed)


def start_workers(url: str, count: int, concurrency: int) -> list[subprocess.Popen[str]]:
    """Worker processes serving the `indexing` queue; returns once each printed `ready`."""
    env = {**os.environ, "REDIS_URL": url, "INDEXING_QUEUE_CONCURRENCY": str(concurrency), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a benchmark worker did not start")
    return procs


def stop_workers(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def run_queue(url: str, repo: Path, database: Path, workers: int, concurrency: int) -> Run:
    """A `full-index` job through `workers` worker processes."""
    from conveyor import Conveyor, JobState, load_settings
    from conveyor.indexer import start_full_index
    from conveyor.indexer.fullindex import follow_full_index

    app = Conveyor(load_settings(redis_url=url))
    async with app:
        await app.client.flushall()
        procs = start_workers(url, workers, concurrency)
        try:
            started = time.perf_counter()
            job_id = await start_full_index(app, repo, index=database)
            job = await follow_full_index(app, "indexing", job_id, poll_s=0.05)  # through its batches' summary
            elapsed = time.perf_counter() - started
        finally:
            stop_workers(procs)
    if job.state is JobState.FAILED:
        raise RuntimeError(f"full-index failed: {job.failed_reason}")
    return Run("queue", workers, int(job.result["done"]), elapsed)


async def serve() -> None:
    """`--worker`: a worker process with the indexer's handlers, until SIGTERM."""
    from conveyor import Conveyor, load_settings
    from conveyor.indexer import register

    app = Conveyor(load_settings())
    register(app)
    async with app:
        worker = app.worker(["indexing"])
        worker.install_signal_handlers()
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)
        print("ready", flush=True)
        await task


def table(runs: list[Run]) -> str:
    direct = next(r for r in runs if r.mode == "direct loop")
    lines = [
        "| mode | worker processes | files | seconds | files/s | vs direct |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        workers = str(run.workers) if run.workers else "-"
        ratio = run.rate / direct.rate if direct.rate else 0.0
        lines.append(f"| {run.mode} | {workers} | {run.files} | {run.seconds:.2f} | {run.rate:,.0f} | {ratio:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, help="Repository to index (default: copied installed packages).")
    parser.add_argument("--min-files", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=5, help="indexing slots per worker process")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(serve())
        os._exit(0)

    from conveyor.redis.embedded import EmbeddedRedis

    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        repo = args.repo.resolve() if args.repo else build_repo(work / "repo", args.min_files)
        runs = [run_direct(repo, work / "direct.sqlite")]
        with EmbeddedRedis(work / "redis") as server:
            for workers in (1, 2):
                database = work / f"queue-{workers}.sqlite"
                runs.append(asyncio.run(run_queue(server.url, repo, database, workers, args.concurrency)))
        print(f"Repository: {runs[0].files} files; {os.cpu_count()} cores; concurrency {args.concurrency}/process.")
        print(table(runs))


if __name__ == "__main__":
    main()
