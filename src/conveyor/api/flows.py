"""Flows in the API: add trees and chains of jobs.

A job's children, parent and children's results are fields of the `Job` type (`conveyor.api.job_node.JobNode`),
so a flow reads as a tree.
"""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import require
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.inputs import JobOptionsInput, options_of
from conveyor.api.job_node import JobNode
from conveyor.api.tokens import Role
from conveyor.queue.flows import FailurePolicy, FlowJob, Flows


@strawberry.enum(name="FailurePolicy", description="What a child's failure (for good) does to its parent.")
class FailurePolicyEnum(Enum):
    FAIL = "fail"
    CONTINUE = "continue"
    IGNORE = "ignore"
    WAIT = "wait"


@strawberry.input(
    name="FlowJobInput",
    description="A job of a flow: its children run first; `onFailure` says what its failure does to its parent.",
)
class FlowJobInput:
    queue: str
    type: str
    data: JSON | None = None
    options: JobOptionsInput | None = None
    on_failure: FailurePolicyEnum = FailurePolicyEnum.FAIL
    children: list[FlowJobInput] | None = None

    def to_flow(self) -> FlowJob:
        """The queue layer's flow job (options validated)."""
        children = tuple(child.to_flow() for child in self.children or ())
        policy = FailurePolicy(self.on_failure.value)
        return FlowJob(self.queue, self.type, self.data, options_of(self.options), children, policy)


def _authorize(ctx: ApiContext, flow: FlowJob) -> None:
    jobs = list(flow.walk())
    if len(jobs) > ctx.config.max_batch_size:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"A flow may hold at most {ctx.config.max_batch_size} jobs.")
    for queue in {job.queue for job in jobs}:
        require(ctx, Role.OPERATOR, queue)


@strawberry.type
class FlowMutation:
    @described.mutation(
        "Add a flow: a parent job that runs after all its children (in any queues) have completed; atomic."
    )
    async def add_flow(self, info: ApiInfo, flow: FlowJobInput) -> JobNode:
        ctx = info.context
        tree = flow.to_flow()
        _authorize(ctx, tree)
        added = await Flows.of(ctx.app).add(tree)
        return JobNode.of(await ctx.app.queue(added.queue).get_job(added.job_id))

    @described.mutation(
        "Add a chain: `steps[0]` runs first, each next step after the previous one completed (handlers read the "
        "previous result). Returns the jobs in the order they run."
    )
    async def add_chain(self, info: ApiInfo, steps: list[FlowJobInput]) -> list[JobNode]:
        ctx = info.context
        if not steps:
            raise ApiError(ErrorCode.BAD_USER_INPUT, "A chain needs at least one step.")
        if any(step.children for step in steps):
            raise ApiError(
                ErrorCode.BAD_USER_INPUT, "Chain steps have no children: each step's child is the one before."
            )
        flows = [step.to_flow() for step in steps]
        for step in flows:
            _authorize(ctx, step)
        ids = await Flows.of(ctx.app).add_chain(flows)
        return [
            JobNode.of(await ctx.app.queue(step.queue).get_job(job_id)) for step, job_id in zip(flows, ids, strict=True)
        ]
