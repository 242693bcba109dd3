"""Subscriptions, fed by the queues' event streams in Redis (so updates from workers anywhere arrive)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime

import strawberry

from conveyor.api import fields as described
from conveyor.api.auth import require
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.job_node import JobNode
from conveyor.api.query import find_job, queue_node
from conveyor.api.tokens import Role
from conveyor.api.types import (
    JobUpdateNode,
    QueueEventNode,
    QueueNode,
    ThroughputNode,
    WorkerNode,
    visible_workers,
)
from conveyor.queue.errors import JobNotFoundError
from conveyor.queue.events import GAP_EVENT, QueueEvent
from conveyor.queue.job import Job, JobState

FINAL_EVENTS = frozenset({"completed", "failed", "removed"})
FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED})
LOG_POLL_S = 0.5  # BullMQ's addLog writes no event, so new log lines are polled
STATS_HEARTBEAT_S = 5.0  # also re-read counts this often: clearing a queue writes no per-job events
WORKERS_POLL_S = 1.0  # heartbeats write no events, so the worker list is re-read (workers beat every 2 s)
THROUGHPUT_INTERVALS_S = (0.5, 60.0)


async def _locate(ctx: ApiContext, job_id: str, queue: str | None) -> Job:
    job = await find_job(ctx, job_id, queue)
    if job is None:
        raise ApiError(ErrorCode.JOB_NOT_FOUND, f"No job {job_id!r}{f' in queue {queue!r}' if queue else ''}.")
    return job


async def _current(ctx: ApiContext, job: Job) -> Job | None:
    try:
        return await ctx.app.queue(job.queue).get_job(job.id)
    except JobNotFoundError:
        return None


def _gap(queue: str, since: str, first: str | None) -> QueueEventNode:
    event = QueueEvent(since, queue, GAP_EVENT, None, {"firstAvailable": first or ""})
    return QueueEventNode.of(event)


@strawberry.type
class Subscription:
    @described.subscription(
        "The job after each progress report; ends when the job finishes or is removed. The job is named by `id` "
        "or, as in the design note, `jobId`."
    )
    async def job_progress(
        self,
        info: ApiInfo,
        id: strawberry.ID | None = None,
        queue: str | None = None,
        job_id: strawberry.ID | None = None,
    ) -> AsyncGenerator[JobNode, None]:
        ctx = info.context
        if (id is None) == (job_id is None):
            raise ApiError(ErrorCode.BAD_USER_INPUT, "Name the job with exactly one of `id` and `jobId`.")
        job = await _locate(ctx, str(id if id is not None else job_id), queue)
        async with ctx.hub.subscribe(job.queue) as events:
            current = await _current(ctx, job)
            last = _node(current)
            if last is not None:
                yield last
            if current is None or current.state in FINAL_STATES:
                return
            while True:  # until the job's final event (its snapshot may turn final one event earlier)
                event = await events.get()
                if event is None or event.job_id != job.id or event.name not in FINAL_EVENTS | {"progress"}:
                    continue
                current = await _current(ctx, job)
                node = _node(current)
                if node is not None and node != last:
                    last = node
                    yield node
                if event.name in FINAL_EVENTS:
                    return

    @described.subscription("Every change of a job (events, new log lines); ends when the job finishes or is removed.")
    async def job_updates(
        self, info: ApiInfo, id: strawberry.ID, queue: str | None = None
    ) -> AsyncGenerator[JobUpdateNode, None]:
        ctx = info.context
        job = await _locate(ctx, str(id), queue)
        async with ctx.hub.subscribe(job.queue) as events:
            current = await _current(ctx, job)
            seen_logs = len(current.logs) if current else 0
            yield JobUpdateNode(event="snapshot", event_id=None, job=_node(current), new_logs=[])
            if current is None or current.state in FINAL_STATES:
                return
            while True:  # until the job's final event
                event = await events.get(max_wait=LOG_POLL_S)
                if event is not None and event.job_id != job.id:
                    continue
                current = await _current(ctx, job)
                logs = current.logs if current is not None else []
                new_logs, seen_logs = logs[seen_logs:], max(seen_logs, len(logs))
                if event is None and not new_logs:
                    continue
                name = event.name if event is not None else "log"
                yield JobUpdateNode(
                    event=name, event_id=event.id if event else None, job=_node(current), new_logs=new_logs
                )
                if event is not None and event.name in FINAL_EVENTS:
                    return

    @described.subscription("A queue's counts when they change, at most every `statsInterval`.")
    async def queue_stats(self, info: ApiInfo, queue_name: str) -> AsyncGenerator[QueueNode, None]:
        ctx = info.context
        require(ctx, Role.VIEWER, queue_name)
        interval = ctx.config.stats_interval_s
        async with ctx.hub.subscribe(queue_name) as events:
            last = await queue_node(ctx, queue_name)
            yield last
            while True:
                sent_at = time.monotonic()
                await events.get(max_wait=STATS_HEARTBEAT_S)
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - sent_at)))
                while await events.get(max_wait=0) is not None:
                    pass  # merge everything that happened meanwhile into one update
                stats = await queue_node(ctx, queue_name)
                if stats != last:
                    last = stats
                    yield stats

    @described.subscription(
        "A queue's events from Redis, after `since` (an event id; from now when null). Reconnect with "
        "the last id received to resume without gaps; an `events-lost` event says the stream was trimmed past it."
    )
    async def queue_events(
        self, info: ApiInfo, queue: str, since: str | None = None
    ) -> AsyncGenerator[QueueEventNode, None]:
        ctx = info.context
        require(ctx, Role.VIEWER, queue)
        async with ctx.hub.subscribe(queue, since) as events:
            if since is not None and await events.lost():
                yield _gap(queue, since, await events.stream.first_id())
            async for event in events:
                yield QueueEventNode.of(event)

    @described.subscription(
        "The live workers serving the caller's queues: now, then whenever one starts, stops, beats or changes."
    )
    async def workers(self, info: ApiInfo) -> AsyncGenerator[list[WorkerNode], None]:
        ctx = info.context
        last: list[WorkerNode] | None = None
        while True:
            current = await visible_workers(ctx)
            if current != last:
                last = current
                yield current
            await asyncio.sleep(WORKERS_POLL_S)

    @described.subscription(
        "Completed and failed jobs of a queue, counted from its events, every `interval` seconds (0.5 to 60)."
    )
    async def queue_throughput(
        self, info: ApiInfo, queue: str, interval: float = 2.0
    ) -> AsyncGenerator[ThroughputNode, None]:
        ctx = info.context
        require(ctx, Role.VIEWER, queue)
        low, high = THROUGHPUT_INTERVALS_S
        if not low <= interval <= high:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`interval` must be between {low} and {high} seconds.")
        async with ctx.hub.subscribe(queue) as events:
            start, deadline = datetime.now(UTC), time.monotonic() + interval
            counts = {"completed": 0, "failed": 0}
            while True:
                now = time.monotonic()
                if now >= deadline:
                    end = datetime.now(UTC)
                    yield ThroughputNode(queue=queue, start=start, end=end, **counts)
                    start, deadline, counts = end, max(deadline + interval, now), dict.fromkeys(counts, 0)
                    continue
                event = await events.get(max_wait=deadline - now)
                if event is not None and event.name in counts:
                    counts[event.name] += 1


def _node(job: Job | None) -> JobNode | None:
    return JobNode.of(job, with_logs=True) if job is not None else None
