"""Throughput and latency of a queue over a time range, computed from its finished jobs.

Conveyor's workers do not write BullMQ's `metrics:*` keys, so the numbers come from the jobs themselves:
every job in the `completed` and `failed` sets (scored by finish time) that finished within the range, with
its `timestamp` (created), `delay`, `processedOn` (last attempt started) and `finishedOn`. Wait time is from
when the job was due (created + delay) to when its last attempt started; run time is that attempt's length.
Only jobs the queue still retains count: a queue that keeps few finished jobs (`keep_completed`) reports
fewer than it ran.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.queue.queue import Queue

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Percentiles:
    """Distribution of durations in milliseconds (all None without samples)."""

    count: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Percentiles:
        """Nearest-rank percentiles of the values."""
        if not values:
            return cls(0, None, None, None, None, None, None)
        ordered = sorted(values)

        def rank(p: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, int(-(-p * len(ordered) // 100)) - 1))]

        return cls(len(ordered), rank(50), rank(90), rank(95), rank(99), ordered[-1], sum(ordered) / len(ordered))


@dataclass(frozen=True)
class MinuteCount:
    """Jobs finished in one minute."""

    start: datetime
    completed: int
    failed: int


@dataclass(frozen=True)
class QueueMetrics:
    """A queue's throughput and latency between `start` and `end`."""

    queue: str
    start: datetime
    end: datetime
    completed: int
    failed: int
    per_minute: list[MinuteCount]
    jobs_per_second: float
    wait_ms: Percentiles
    run_ms: Percentiles
    truncated: bool


async def _finished(queue: Queue, target: str, start_ms: int, end_ms: int, cap: int) -> list[list[str | None]]:
    key = queue.keys.of(target)
    ids = await queue.client.zrange(key, start_ms, end_ms, byscore=True, offset=0, num=cap)
    pipe = queue.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(queue.keys.job(str(job_id)), ["timestamp", "delay", "processedOn", "finishedOn"])
    rows: list[list[str | None]] = await pipe.execute()
    return rows


def _ms(value: str | None) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except ValueError:
        return None


async def queue_metrics(
    queue: Queue, range_ms: int, *, now: Callable[[], float] = time.time, max_jobs: int = 20_000
) -> QueueMetrics:
    """Metrics of the jobs that finished in the last `range_ms` milliseconds (at most `max_jobs` of each of
    completed and failed; `truncated` says when more finished)."""
    end_ms = int(now() * 1000)
    start_ms = end_ms - range_ms
    first_minute = start_ms // MINUTE_MS
    buckets = {m: [0, 0] for m in range(first_minute, end_ms // MINUTE_MS + 1)}
    waits: list[float] = []
    runs: list[float] = []
    totals = [0, 0]
    truncated = False
    for slot, target in enumerate(("completed", "failed")):
        rows = await _finished(queue, target, start_ms, end_ms, max_jobs + 1)
        truncated = truncated or len(rows) > max_jobs
        for created, delay, processed, finished in rows[:max_jobs]:
            finished_ms = _ms(finished)
            if finished_ms is None:
                continue  # removed since the range was read
            totals[slot] += 1
            buckets.setdefault(finished_ms // MINUTE_MS, [0, 0])[slot] += 1
            started_ms, created_ms = _ms(processed), _ms(created)
            if started_ms is not None:
                runs.append(max(0, finished_ms - started_ms))
                if created_ms is not None:
                    waits.append(max(0, started_ms - created_ms - (_ms(delay) or 0)))
    seconds = max(range_ms / 1000, 0.001)
    return QueueMetrics(
        queue=queue.name,
        start=datetime.fromtimestamp(start_ms / 1000, UTC),
        end=datetime.fromtimestamp(end_ms / 1000, UTC),
        completed=totals[0],
        failed=totals[1],
        per_minute=[
            MinuteCount(datetime.fromtimestamp(m * 60, UTC), done, failed)
            for m, (done, failed) in sorted(buckets.items())
            if m >= first_minute
        ],
        jobs_per_second=(totals[0] + totals[1]) / seconds,
        wait_ms=Percentiles.of(waits),
        run_ms=Percentiles.of(runs),
        truncated=truncated,
    )
