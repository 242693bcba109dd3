"""The GraphQL object types and enums, each built from the queue layer's plain objects (the `Job` type and its
links in a flow are `conveyor.api.job_node`)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import require, visible_queues
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.job_node import JobNode
from conveyor.api.tokens import Role, TokenInfo
from conveyor.queue.events import EventStream, QueueEvent
from conveyor.queue.job import JobState
from conveyor.queue.limits import QueueLimits
from conveyor.queue.metrics import MinuteCount, Percentiles, QueueMetrics
from conveyor.queue.queue import QueueCounts
from conveyor.worker.registry import WorkerInfo


@strawberry.enum(name="Role", description="What an API token may do.")
class RoleEnum(Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


@strawberry.type(name="RateLimit", description="At most `max` jobs per `durationMs`.")
class RateLimitNode:
    max: int
    duration_ms: int


@strawberry.type(
    name="QueueLimits",
    description="Queue-wide limits in force in Redis, for every worker of the queue (Conveyor's and Node's), "
    "whoever set them; null where there is none.",
)
class QueueLimitsNode:
    rate_limit: RateLimitNode | None
    global_concurrency: int | None = strawberry.field(
        description="At most this many of the queue's jobs run at once, across all workers."
    )

    @classmethod
    def of(cls, limits: QueueLimits) -> QueueLimitsNode:
        rate = limits.rate_limit
        return cls(
            rate_limit=RateLimitNode(max=rate.max, duration_ms=rate.duration_ms) if rate is not None else None,
            global_concurrency=limits.global_concurrency,
        )


@strawberry.type(name="Queue", description="A queue and how many jobs it holds in each state.")
class QueueNode:
    name: str
    waiting: int = strawberry.field(
        description="Every job waiting to run (with or without a priority, paused queue or not)."
    )
    active: int
    completed: int
    failed: int
    delayed: int
    prioritized: int = strawberry.field(description="Waiting jobs with a priority (part of `waiting`).")
    paused: int = strawberry.field(
        description="Waiting jobs the pause holds back: all of `waiting` while the queue is paused."
    )
    waiting_children: int
    is_paused: bool
    concurrency: int = strawberry.field(description="Default concurrency of a worker on this queue.")

    @described.field(
        "The id of the queue's newest event: read a snapshot, then subscribe to `queueEvents` with this as "
        "`since` to miss nothing in between."
    )
    async def last_event_id(self, info: ApiInfo) -> str:
        require(info.context, Role.VIEWER, self.name)
        return await EventStream(info.context.app.client, info.context.app.queue(self.name).keys).last_id()

    @described.field("The queue-wide limits in force (rate limit, global concurrency), whoever set them.")
    async def limits(self, info: ApiInfo) -> QueueLimitsNode:
        require(info.context, Role.VIEWER, self.name)
        return QueueLimitsNode.of(await info.context.app.queue(self.name).limits())

    @classmethod
    def of(cls, name: str, counts: QueueCounts, concurrency: int) -> QueueNode:
        return cls(
            name=name,
            waiting=counts.waiting,
            active=counts.active,
            completed=counts.completed,
            failed=counts.failed,
            delayed=counts.delayed,
            prioritized=counts.prioritized,
            paused=counts.paused_jobs,
            waiting_children=counts.waiting_children,
            is_paused=counts.paused,
            concurrency=concurrency,
        )


@strawberry.type(name="WorkerQueue", description="One queue a worker serves.")
class WorkerQueueNode:
    name: str
    concurrency: int
    active: int
    job_types: list[str] = strawberry.field(
        default_factory=list, description="The job types it has handlers for on this queue (jobs of others go to "
        "workers that have them)."
    )  # fmt: skip


@strawberry.type(name="Worker", description="A live worker process (it heartbeats into Redis).")
class WorkerNode:
    id: strawberry.ID
    name: str
    host: str
    pid: int
    queues: list[WorkerQueueNode]
    processed: int
    started_at: datetime
    last_beat: datetime
    runtime: str = strawberry.field(
        default="conveyor",
        description="`conveyor`, or `bullmq` for a Node BullMQ worker (seen by its connection: no pid, counts 0).",
    )

    @classmethod
    def of(cls, info: WorkerInfo, visible: set[str]) -> WorkerNode:
        """The worker as a caller who may see the `visible` queues sees it (its other queues left out)."""
        queues = [
            WorkerQueueNode(
                name=name, concurrency=conc, active=info.active.get(name, 0), job_types=info.job_types.get(name, [])
            )
            for name, conc in info.queues.items()
            if name in visible
        ]
        return cls(
            id=strawberry.ID(info.id),
            name=info.name,
            host=info.host,
            pid=info.pid,
            queues=queues,
            processed=info.processed,
            started_at=info.started_at,
            last_beat=info.last_beat,
            runtime=info.runtime,
        )


async def visible_workers(ctx: ApiContext) -> list[WorkerNode]:
    """The live workers serving any queue the caller may see, each showing only those queues."""
    visible = set(visible_queues(ctx))
    return [WorkerNode.of(w, visible) for w in await ctx.app.workers() if visible & set(w.queues)]


@strawberry.type(name="DurationStats", description="A distribution of durations in milliseconds.")
class DurationStatsNode:
    count: int
    p50: float | None
    p90: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of(cls, p: Percentiles) -> DurationStatsNode:
        return cls(count=p.count, p50=p.p50, p90=p.p90, p95=p.p95, p99=p.p99, max=p.max, mean=p.mean)


@strawberry.type(name="MinuteCount", description="Jobs that finished in one minute.")
class MinuteCountNode:
    start: datetime
    completed: int
    failed: int

    @classmethod
    def of(cls, m: MinuteCount) -> MinuteCountNode:
        return cls(start=m.start, completed=m.completed, failed=m.failed)


@strawberry.type(
    name="QueueMetrics",
    description="Throughput and latency over a range, computed from the finished jobs the queue retains.",
)
class QueueMetricsNode:
    queue: str
    start: datetime
    end: datetime
    completed: int
    failed: int
    per_minute: list[MinuteCountNode]
    jobs_per_second: float
    wait_time: DurationStatsNode = strawberry.field(description="From due to started, ms.")
    run_time: DurationStatsNode = strawberry.field(description="From started to finished, ms.")
    truncated: bool = strawberry.field(description="True when more jobs finished than were examined.")

    @classmethod
    def of(cls, m: QueueMetrics) -> QueueMetricsNode:
        return cls(
            queue=m.queue,
            start=m.start,
            end=m.end,
            completed=m.completed,
            failed=m.failed,
            per_minute=[MinuteCountNode.of(x) for x in m.per_minute],
            jobs_per_second=m.jobs_per_second,
            wait_time=DurationStatsNode.of(m.wait_ms),
            run_time=DurationStatsNode.of(m.run_ms),
            truncated=m.truncated,
        )


@strawberry.type(name="QueueEvent", description="One entry of a queue's event stream in Redis.")
class QueueEventNode:
    id: str = strawberry.field(description="Stream id; pass it as `since` to resume after this event.")
    queue: str
    event: str = strawberry.field(description="added, waiting, active, progress, completed, failed, delayed, …")
    job_id: strawberry.ID | None
    at: datetime
    fields: JSON = strawberry.field(description="The event's other fields, as BullMQ wrote them.")

    @classmethod
    def of(cls, event: QueueEvent) -> QueueEventNode:
        job_id = strawberry.ID(event.job_id) if event.job_id is not None else None
        fields = JSON(dict(event.fields))
        return cls(id=event.id, queue=event.queue, event=event.name, job_id=job_id, at=event.at, fields=fields)


@strawberry.type(name="JobUpdate", description="A change of one job: an event, the job after it, new log lines.")
class JobUpdateNode:
    event: str = strawberry.field(description="`snapshot` first, then the stream's event names, or `log`.")
    event_id: str | None
    job: JobNode | None = strawberry.field(description="Null once the job was removed.")
    new_logs: list[str]


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type(name="JobEdge")
class JobEdge:
    cursor: str
    node: JobNode


@strawberry.type(name="JobConnection", description="A page of jobs (Relay connection).")
class JobConnection:
    edges: list[JobEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[JobNode]:
        return [edge.node for edge in self.edges]


@strawberry.type(name="BulkFailure")
class BulkFailure:
    id: strawberry.ID
    code: str
    message: str


@strawberry.type(name="BulkResult", description="Outcome of an operation on many jobs by id.")
class BulkResult:
    succeeded: list[strawberry.ID]
    failed: list[BulkFailure]


@strawberry.type(name="CancelResult")
class CancelResult:
    job_id: strawberry.ID
    queue: str
    previous_state: JobState
    removed: bool = strawberry.field(
        description="True: it was pending and is gone; false: an active job was asked to stop."
    )


@strawberry.type(name="RetryWhereResult")
class RetryWhereResult:
    matched: int
    retried: int
    skipped: int = strawberry.field(description="Matched but changed state before they could be retried.")
    dry_run: bool
    truncated: bool = strawberry.field(description="More jobs matched than `limit`; run again for the rest.")
    job_ids: list[strawberry.ID]


@strawberry.type(name="ApiToken", description="An API token (its secret is never shown again).")
class ApiTokenNode:
    id: strawberry.ID
    name: str
    role: RoleEnum
    queues: list[str] | None
    created_at: datetime
    tenant: str | None = strawberry.field(default=None, description="The tenant it is limited to; null: none.")

    @classmethod
    def of(cls, info: TokenInfo) -> ApiTokenNode:
        queues = list(info.queues) if info.queues is not None else None
        return cls(
            id=strawberry.ID(info.id),
            name=info.name,
            role=RoleEnum(info.role.value),
            queues=queues,
            created_at=info.created_at,
            tenant=info.tenant,
        )


@strawberry.type(name="Caller", description="Who is calling: the token's name, role and queue scope.")
class CallerNode:
    name: str
    role: RoleEnum
    queues: list[str] | None = strawberry.field(description="The queues the token is limited to; null: every queue.")
    anonymous: bool = strawberry.field(description="True for tokenless loopback access (development mode).")


@strawberry.type(name="Throughput", description="Jobs of a queue that finished in one interval, from its events.")
class ThroughputNode:
    queue: str
    start: datetime
    end: datetime
    completed: int
    failed: int

    @described.field("Finished (completed and failed) jobs per second over the interval.")
    def jobs_per_second(self) -> float:
        seconds = (self.end - self.start).total_seconds()
        return (self.completed + self.failed) / seconds if seconds > 0 else 0.0


@strawberry.type(name="CreatedApiToken")
class CreatedApiToken:
    token: str = strawberry.field(description="The secret: store it now, it is not shown again.")
    info: ApiTokenNode


def role_of(value: RoleEnum) -> Role:
    """The token layer's role."""
    return Role(value.value)
