"""Code search evaluation on two real corpora: recall@1, recall@10 and MRR of lexical, semantic and hybrid search,
search latency, and indexing files/s through the queue against the direct loop at 1 and 2 processes.

    .venv/bin/python -m bench.bench_search [--skip-throughput] [--queries-only]

The corpora are copied into a temporary folder: this Python's standard library (without its `test`, `idlelib`
and `site-packages` folders) and the sources of some packages installed beside Conveyor (see `SITE_PACKAGES`).
Queries (at least 60):

- exact names: 30 definitions whose name is unique in the index and at least 6 characters long, drawn
  deterministically (by a hash of the qualified name); found when the hit is that definition;
- name parts: 15 such names of 3 or more words, searched as their words (`get close matches`);
- descriptions: the hand-labelled natural-language queries of `bench/search_queries.py`.

Embeddings come from the offline provider (WordLlama), computed directly here (the `embed` jobs run the same
function). Throughput runs index with embeddings off, so they compare the queue with the direct loop alone; a
last run indexes through the queue with embeddings on and is timed until its `embed` jobs are done as well.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import multiprocessing
import os
import shutil
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_indexer import Run, run_queue
from bench.search_queries import DESCRIBED

SITE_PACKAGES = ("rich", "httpx", "starlette", "pydantic", "click", "croniter", "pathspec", "redis", "anyio")
STDLIB_SKIP = ("test", "idlelib", "site-packages", "__pycache__", "lib2to3", "tkinter", "turtledemo")
MODES = ("lexical", "semantic", "hybrid")
EXACT_QUERIES, PART_QUERIES = 30, 15
Answer = tuple[str, str]  # (path suffix, qualified symbol)


@dataclass(frozen=True)
class Query:
    kind: str  # exact, parts, described
    text: str
    answers: list[Answer]


def build_corpora(target: Path) -> Path:
    """The standard library and some installed packages, copied under `target`."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    shutil.copytree(stdlib, target / "stdlib", symlinks=True, ignore=shutil.ignore_patterns(*STDLIB_SKIP))
    site = Path(sysconfig.get_paths()["purelib"])
    for name in SITE_PACKAGES:
        if (site / name).is_dir():
            shutil.copytree(site / name, target / "site" / name, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def index_directly(repo: Path, database: Path) -> tuple[int, float]:
    """Index every file in one loop; (files, seconds)."""
    from conveyor.indexer.store import CodeIndex
    from conveyor.indexer.walker import walk_repository

    index = CodeIndex(database)
    started = time.perf_counter()
    files = [found.path for found in walk_repository(repo)]
    for path in files:
        index.index_file(path)
    index.close()
    return len(files), time.perf_counter() - started


def _index_share(database: str, paths: list[str]) -> None:
    from conveyor.indexer.store import CodeIndex

    index = CodeIndex(Path(database))
    for path in paths:
        index.index_file(Path(path))
    index.close()


def index_directly_in(processes: int, repo: Path, database: Path) -> Run:
    """The direct loop split over `processes` processes writing the same index (the walk is timed too)."""
    from conveyor.indexer.walker import walk_repository

    started = time.perf_counter()
    files = [str(found.path) for found in walk_repository(repo)]
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_index_share, args=(str(database), files[n::processes])) for n in range(processes)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return Run("direct loop", processes, len(files), time.perf_counter() - started)


def sample_name_queries(database: Path) -> list[Query]:
    """Exact-name and name-part queries drawn from the index (see the module's description)."""
    import sqlite3

    from conveyor.indexer.text import split_identifier

    db = sqlite3.connect(database)
    rows = db.execute(
        "SELECT s.name, s.qualified, f.path FROM symbols s JOIN files f ON f.id = s.file_id "
        "WHERE s.kind IN ('function', 'class', 'method') AND length(s.name) >= 6 "
        "AND s.name NOT LIKE '\\_%' ESCAPE '\\' "
        "AND s.name IN (SELECT name FROM symbols GROUP BY name HAVING count(*) = 1)"
    ).fetchall()
    db.close()
    rows.sort(key=lambda row: hashlib.sha1(row[1].encode()).hexdigest())
    exact = [Query("exact", name, [(path, qualified)]) for name, qualified, path in rows[:EXACT_QUERIES]]
    parts = []
    for name, qualified, path in rows[EXACT_QUERIES:]:
        words = [word.lower() for word in split_identifier(name)]
        if len(words) >= 3 and len(parts) < PART_QUERIES:
            parts.append(Query("parts", " ".join(words), [(path, qualified)]))
    return exact + parts


def described_queries() -> list[Query]:
    return [Query("described", text, answers) for text, answers in DESCRIBED]


def rank_of(hits: list[object], answers: list[Answer]) -> int | None:
    """1-based rank of the first hit that is one of the answers."""
    for position, hit in enumerate(hits, 1):
        if any(hit.file.endswith(suffix) and hit.symbol == symbol for suffix, symbol in answers):  # type: ignore[attr-defined]
            return position
    return None


def evaluate(search: Callable[[str, str], list[object]], queries: list[Query]) -> tuple[dict, dict]:
    """Per (kind, mode): recall@1, recall@10, MRR; per mode: latencies in ms."""
    scores: dict[tuple[str, str], list[int | None]] = {}
    latency: dict[str, list[float]] = {mode: [] for mode in MODES}
    for mode in MODES:
        for query in queries:
            started = time.perf_counter()
            hits = search(query.text, mode)
            latency[mode].append((time.perf_counter() - started) * 1000)
            scores.setdefault((query.kind, mode), []).append(rank_of(hits, query.answers))
    metrics = {}
    for key, ranks in scores.items():
        metrics[key] = (
            sum(1 for r in ranks if r == 1) / len(ranks),
            sum(1 for r in ranks if r is not None and r <= 10) / len(ranks),
            sum(1 / r for r in ranks if r is not None) / len(ranks),
            len(ranks),
        )
    return metrics, latency


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def quality_table(metrics: dict, latency: dict) -> str:
    lines = ["| queries | n | mode | recall@1 | recall@10 | MRR |", "|---|---:|---|---:|---:|---:|"]
    for kind in ("exact", "parts", "described"):
        for mode in MODES:
            r1, r10, mrr, n = metrics[(kind, mode)]
            lines.append(f"| {kind} | {n} | {mode} | {r1:.2f} | {r10:.2f} | {mrr:.3f} |")
    lines += ["", "| mode | search p50 (ms) | search p99 (ms) |", "|---|---:|---:|"]
    for mode in MODES:
        lines.append(f"| {mode} | {percentile(latency[mode], 0.5):.1f} | {percentile(latency[mode], 0.99):.1f} |")
    return "\n".join(lines)


def throughput_table(runs: list[Run]) -> str:
    direct = {run.workers: run.rate for run in runs if run.mode == "direct loop"}
    lines = ["| mode | processes | files | seconds | files/s | vs direct at same processes |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for run in runs:
        ratio = run.rate / direct[run.workers] if direct.get(run.workers) else 0.0
        lines.append(
            f"| {run.mode} | {run.workers} | {run.files} | {run.seconds:.2f} | {run.rate:,.0f} | {ratio:.2f} |"
        )
    return "\n".join(lines)


def measure_quality(repo: Path, work: Path) -> str:
    from conveyor.indexer.embedding import OfflineEmbedder
    from conveyor.indexer.embedjobs import embed_missing
    from conveyor.indexer.semantic import search_code
    from conveyor.indexer.store import CodeIndex

    database = work / "eval.sqlite"
    files, seconds = index_directly(repo, database)
    index = CodeIndex(database, search_timeout_s=30)
    embedder = OfflineEmbedder()
    started = time.perf_counter()
    embedded = embed_missing(index, embedder, [], batch=256)
    embed_s = time.perf_counter() - started
    queries = sample_name_queries(database) + described_queries()
    metrics, latency = evaluate(lambda text, mode: search_code(index, text, 10, mode=mode, embedder=embedder), queries)
    index.close()
    size_mb = database.stat().st_size / 2**20
    head = (f"Corpora: {files} files indexed in {seconds:.1f} s; {embedded:,} symbols embedded in {embed_s:.1f} s "
            f"({embedded / embed_s:,.0f}/s); index {size_mb:.0f} MB; {len(queries)} queries.")  # fmt: skip
    return head + "\n\n" + quality_table(metrics, latency)


async def run_queue_with_embeddings(url: str, repo: Path, database: Path, workers: int, concurrency: int) -> Run:
    """A `full-index` with embeddings on, timed until its `embed` jobs are done too (the workers are restarted
    between the two parts; their start is not timed)."""
    from bench.bench_indexer import start_workers, stop_workers
    from conveyor import Conveyor, JobState, load_settings

    os.environ["CONVEYOR_EMBED_PROVIDER"] = "offline"
    indexing = await run_queue(url, repo, database, workers, concurrency)  # stops its workers when indexing ends
    pending = (JobState.WAITING, JobState.PRIORITIZED, JobState.ACTIVE)
    app = Conveyor(load_settings(redis_url=url))
    async with app:
        queue = app.queue("indexing")
        procs = start_workers(url, workers, concurrency)
        try:
            started = time.perf_counter()
            while True:  # the jobs run in other processes: poll their counts
                if not await _pending(queue, pending):
                    break
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - started
        finally:
            stop_workers(procs)
    return Run("queue, then its embed jobs", workers, indexing.files, indexing.seconds + elapsed)


async def _pending(queue: Any, states: tuple[Any, ...]) -> int:
    return sum([await queue.count_of(state) for state in states])


def measure_throughput(repo: Path, work: Path, concurrency: int) -> str:
    from conveyor.redis.embedded import EmbeddedRedis

    os.environ["CONVEYOR_EMBED_PROVIDER"] = "off"  # the workers inherit it: indexing alone is compared
    runs = [index_directly_in(n, repo, work / f"direct-{n}.sqlite") for n in (1, 2)]
    with EmbeddedRedis(work / "redis") as server:
        for workers in (1, 2):
            database = work / f"queue-{workers}.sqlite"
            runs.append(asyncio.run(run_queue(server.url, repo, database, workers, concurrency)))
        database = work / "queue-embed.sqlite"
        runs.append(asyncio.run(run_queue_with_embeddings(server.url, repo, database, 2, concurrency)))
    return f"{os.cpu_count()} cores; queue concurrency {concurrency} per process.\n\n" + throughput_table(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-throughput", action="store_true", help="only the search quality and latency")
    parser.add_argument("--concurrency", type=int, default=5, help="indexing slots per worker process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-search-bench-") as tmp:
        work = Path(tmp)
        repo = build_corpora(work / "repo")
        print(measure_quality(repo, work), flush=True)
        if not args.skip_throughput:
            print("\n" + measure_throughput(repo, work, args.concurrency), flush=True)


if __name__ == "__main__":
    main()
