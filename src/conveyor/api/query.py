"""Queries: queues, jobs (single, recent, paginated and filtered), workers, metrics and tokens."""

from __future__ import annotations

import strawberry

from conveyor.api import fields as described
from conveyor.api.auth import require, visible_queues
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.inputs import MetricsRange, job_filter
from conveyor.api.job_node import JobNode
from conveyor.api.pagination import connection, decode_cursor
from conveyor.api.principal import ANONYMOUS_LOOPBACK
from conveyor.api.tokens import Role
from conveyor.api.types import (
    ApiTokenNode,
    CallerNode,
    JobConnection,
    QueueMetricsNode,
    QueueNode,
    RoleEnum,
    WorkerNode,
    visible_workers,
)
from conveyor.queue.errors import JobNotFoundError
from conveyor.queue.job import Job, JobState
from conveyor.queue.metrics import queue_metrics
from conveyor.queue.search import recent_jobs, scan_jobs


def check_page_size(ctx: ApiContext, size: int, name: str = "first") -> None:
    """Refuse page sizes outside 1..max_page_size."""
    if not 0 < size <= ctx.config.max_page_size:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`{name}` must be between 1 and {ctx.config.max_page_size}.")


async def queue_node(ctx: ApiContext, name: str) -> QueueNode:
    """A queue with its counts."""
    counts = await ctx.app.queue(name).counts()
    return QueueNode.of(name, counts, ctx.app.queue_settings[name].concurrency)


async def find_job(ctx: ApiContext, job_id: str, queue: str | None, role: Role = Role.VIEWER) -> Job | None:
    """A job by id in a queue, or in whichever visible queue holds it when `queue` is None.

    Raises:
        ApiError: AMBIGUOUS_JOB when several queues hold that id.
    """
    if queue is not None:
        require(ctx, role, queue)
        try:
            return await ctx.app.queue(queue).get_job(job_id)
        except JobNotFoundError:
            return None
    found: list[Job] = []
    for name in visible_queues(ctx):
        try:
            found.append(await ctx.app.queue(name).get_job(job_id))
        except JobNotFoundError:
            continue
    if len(found) > 1:
        names = ", ".join(job.queue for job in found)
        raise ApiError(ErrorCode.AMBIGUOUS_JOB, f"Job {job_id!r} exists in queues {names}; pass `queue`.")
    return found[0] if found else None


@strawberry.type
class Query:
    @described.field("The caller: its token's name, role and queue scope (clients show only what it may do).")
    async def me(self, info: ApiInfo) -> CallerNode:
        principal = require(info.context, Role.VIEWER)
        queues = list(principal.queues) if principal.queues is not None else None
        return CallerNode(
            name=principal.name,
            role=RoleEnum(principal.role.value),
            queues=queues,
            anonymous=principal is ANONYMOUS_LOOPBACK,
        )

    @described.field("Every queue the caller may see, with counts.")
    async def queues(self, info: ApiInfo) -> list[QueueNode]:
        return [await queue_node(info.context, name) for name in visible_queues(info.context)]

    @described.field("One queue with counts.")
    async def queue(self, info: ApiInfo, name: str) -> QueueNode | None:
        require(info.context, Role.VIEWER, name)
        return await queue_node(info.context, name)

    @described.field("A job by id (null when there is none); `queue` may be left out if the id is unique.")
    async def job(self, info: ApiInfo, id: strawberry.ID, queue: str | None = None) -> JobNode | None:
        job = await find_job(info.context, str(id), queue)
        return JobNode.of(job, with_logs=True) if job is not None else None

    @described.field("The most recently created jobs of a queue, newest first.")
    async def recent_jobs(self, info: ApiInfo, queue_name: str, limit: int = 20) -> list[JobNode]:
        require(info.context, Role.VIEWER, queue_name)
        check_page_size(info.context, limit, "limit")
        return [JobNode.of(job) for job in await recent_jobs(info.context.app.queue(queue_name), limit)]

    @described.field(
        "Jobs of a queue, filtered, in pages: active, waiting (in the order they will run), delayed, waiting "
        "for children (oldest or next-to-run first), then completed and failed (newest first)."
    )
    async def jobs(
        self,
        info: ApiInfo,
        queue: str,
        states: list[JobState] | None = None,
        type: str | None = None,
        search: str | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> JobConnection:
        ctx = info.context
        require(ctx, Role.VIEWER, queue)
        check_page_size(ctx, first)
        position = decode_cursor(queue, after) if after is not None else None
        page = await scan_jobs(ctx.app.queue(queue), job_filter(states, type, search), after=position, limit=first)
        return connection(queue, page)

    @described.field("Live worker processes serving the caller's queues.")
    async def workers(self, info: ApiInfo) -> list[WorkerNode]:
        return await visible_workers(info.context)

    @described.field("Throughput and wait/run time percentiles of a queue over a range.")
    async def queue_metrics(
        self, info: ApiInfo, queue: str, range: MetricsRange = MetricsRange.LAST_HOUR
    ) -> QueueMetricsNode:
        require(info.context, Role.VIEWER, queue)
        return QueueMetricsNode.of(await queue_metrics(info.context.app.queue(queue), range.milliseconds))

    @described.field("Every API token (admin without queue scope only).")
    async def api_tokens(self, info: ApiInfo) -> list[ApiTokenNode]:
        require_token_admin(info.context)
        return [ApiTokenNode.of(token) for token in await info.context.tokens.list()]


def require_token_admin(ctx: ApiContext) -> None:
    """Token management needs an admin whose token is not limited to some queues or to a tenant."""
    principal = require(ctx, Role.ADMIN)
    if principal.queues is not None or principal.tenant is not None:
        raise ApiError(
            ErrorCode.FORBIDDEN, "Managing tokens needs an admin token without a queue scope and without a tenant."
        )
