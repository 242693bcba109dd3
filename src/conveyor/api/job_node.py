"""The GraphQL `Job` type: a snapshot of one job, and the jobs it is linked to in a flow.

`Job.children`, `Job.parent` and `Job.childrenResults` resolve here, so a flow reads as a tree:
`job(queue: "background", id: "…") { state children { queue id state children { … } } }`. Jobs in queues outside
the caller's scope are left out; a tenant's caller only ever sees its own namespace. Adding flows is
`conveyor.api.flows`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import require, visible_queues
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.tokens import Role
from conveyor.queue.errors import JobNotFoundError
from conveyor.queue.flows import Flows
from conveyor.queue.job import AttemptRecord, Job, JobState, from_ms

EPOCH = datetime.fromtimestamp(0, UTC)
MAX_LOG_LINES = 1000


# The queue layer's own enum is the GraphQL type (same members, so no second copy to keep in step).
strawberry.enum(
    JobState,
    name="JobState",
    description=(
        "Where a job is; a job is in exactly one state at a time. WAITING is every job waiting to run. "
        "PRIORITIZED and PAUSED are never a job's state: as filters they pick the waiting jobs with a priority "
        "and every waiting job of a paused queue."
    ),
)


@strawberry.type(name="AttemptRecord", description="One failed attempt of a job.")
class AttemptNode:
    attempt: int
    error: str
    stacktrace: str
    failed_at: datetime | None = strawberry.field(
        description="When it failed; null for an attempt of a Node BullMQ worker before the last (not recorded)."
    )
    worker: str

    @classmethod
    def of(cls, record: AttemptRecord) -> AttemptNode:
        return cls(
            attempt=record.attempt,
            error=record.error,
            stacktrace=record.stacktrace,
            failed_at=record.failed_at,
            worker=record.worker,
        )


@strawberry.type(name="Job", description="A snapshot of one job.")
class JobNode:
    id: strawberry.ID
    queue: str
    type: str
    data: JSON
    options: JSON = strawberry.field(description="The job's stored options (BullMQ's `opts`).")
    progress: JSON | None
    state: JobState
    attempts: int = strawberry.field(description="Attempts made so far.")
    max_attempts: int
    priority: int = strawberry.field(description="BullMQ priority: 1 runs first (critical), 4 is low.")
    created_at: datetime
    processed_at: datetime | None = strawberry.field(description="When the latest attempt started.")
    finished_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    delayed_until: datetime | None
    deadline: datetime | None
    failed_reason: str | None
    result: JSON | None
    retry_history: list[AttemptNode]
    worker: str | None
    snapshot_logs: strawberry.Private[list[str] | None]

    @classmethod
    def of(cls, job: Job, *, with_logs: bool = False) -> JobNode:
        """The GraphQL view of a job (`with_logs`: the job was read with its logs)."""
        return cls(
            id=strawberry.ID(job.id),
            queue=job.queue,
            type=job.type,
            data=job.data,
            options=JSON(dict(job.options)),
            progress=job.progress,
            state=job.state,
            attempts=job.attempts_made,
            max_attempts=job.max_attempts,
            priority=job.priority,
            created_at=job.created_at or EPOCH,
            processed_at=job.processed_at,
            finished_at=job.finished_at,
            completed_at=job.finished_at if job.state is JobState.COMPLETED else None,
            failed_at=job.finished_at if job.state is JobState.FAILED else None,
            delayed_until=job.delay_until,
            deadline=from_ms(job.options.get("deadline")),
            failed_reason=job.failed_reason,
            result=job.result,
            retry_history=[AttemptNode.of(record) for record in job.history],
            worker=job.worker,
            snapshot_logs=list(job.logs) if with_logs else None,
        )

    @described.field("The job's log lines, oldest first (the last `last` of them).")
    async def logs(self, info: ApiInfo, last: int = 100) -> list[str]:
        if not 0 < last <= MAX_LOG_LINES:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`last` must be between 1 and {MAX_LOG_LINES}.")
        require(info.context, Role.VIEWER, self.queue)
        lines = self.snapshot_logs
        if lines is None:
            lines = (await info.context.app.queue(self.queue).get_job(str(self.id))).logs
        return lines[-last:]

    # Flows (issue 6): the links of a job to its children and parent.

    @described.field("The jobs this job waits for or waited for (a flow's children, in any queue you may see).")
    async def children(self, info: ApiInfo) -> list[JobNode]:
        ctx = info.context
        require(ctx, Role.VIEWER, self.queue)
        visible = set(visible_queues(ctx))
        found = []
        for child in await Flows.of(ctx.app).children(self.queue, str(self.id)):
            if child.queue in visible and (node := await _job(ctx, child.queue, child.job_id)) is not None:
                found.append(node)
        return found

    @described.field("The job waiting for this one (its parent in a flow), if any.")
    async def parent(self, info: ApiInfo) -> JobNode | None:
        ctx = info.context
        require(ctx, Role.VIEWER, self.queue)
        ref = await Flows.of(ctx.app).parent(self.queue, str(self.id))
        if ref is None or ref.queue not in visible_queues(ctx):
            return None
        return await _job(ctx, ref.queue, ref.job_id)

    @described.field("The results of this job's completed children, by child id (kept when they are removed).")
    async def children_results(self, info: ApiInfo) -> JSON:
        ctx = info.context
        require(ctx, Role.VIEWER, self.queue)
        visible = set(visible_queues(ctx))
        children = await Flows.of(ctx.app).children(self.queue, str(self.id))
        results: dict[str, Any] = {
            c.job_id: c.result for c in children if c.status == "completed" and c.queue in visible
        }
        return JSON(results)


async def _job(ctx: ApiContext, queue: str, job_id: str) -> JobNode | None:
    """The job as the caller sees it, or None when it no longer exists."""
    try:
        return JobNode.of(await ctx.app.queue(queue).get_job(job_id))
    except JobNotFoundError:
        return None
