"""Mutations: enqueue, manage queues, act on jobs one by one or by ids or by filter, manage tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import require
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode, describe
from conveyor.api.inputs import JobFilterInput, JobOptionsInput, NewJobInput, options_of
from conveyor.api.job_node import JobNode
from conveyor.api.query import require_token_admin
from conveyor.api.tokens import Role
from conveyor.api.types import (
    ApiTokenNode,
    BulkFailure,
    BulkResult,
    CancelResult,
    CreatedApiToken,
    RetryWhereResult,
    RoleEnum,
    role_of,
)
from conveyor.api.warnings import warn
from conveyor.errors import ConveyorError
from conveyor.queue.job import JobState
from conveyor.queue.queue import NewJob, Queue
from conveyor.queue.search import JobFilter, retry_where

MAX_RETRY_WHERE = 10_000


def check_batch(ctx: ApiContext, size: int, what: str) -> None:
    """Refuse empty batches and batches above max_batch_size."""
    if not 0 < size <= ctx.config.max_batch_size:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"{what} must hold 1 to {ctx.config.max_batch_size} items.")


async def snapshot(queue: Queue, job_id: str) -> JobNode:
    """The job as it is now, with its logs."""
    return JobNode.of(await queue.get_job(job_id), with_logs=True)


async def for_each(
    ctx: ApiContext, queue: str, ids: list[strawberry.ID], action: Callable[[Queue, str], Awaitable[object]]
) -> BulkResult:
    """Apply an action to each id; failures are reported per id with their code, not raised."""
    check_batch(ctx, len(ids), "`ids`")
    target = ctx.app.queue(queue)
    done: list[strawberry.ID] = []
    failed: list[BulkFailure] = []
    for job_id in dict.fromkeys(ids):
        try:
            await action(target, str(job_id))
        except ConveyorError as exc:
            message, extensions = describe(GraphQLError(str(exc), original_error=exc))
            failed.append(BulkFailure(id=job_id, code=str(extensions["code"]), message=message))
        else:
            done.append(job_id)
    return BulkResult(succeeded=done, failed=failed)


async def _warn_if_unserved(ctx: ApiContext, queue: str, job_types: list[str]) -> None:
    warning = await ctx.app.unserved_warning(queue, job_types)
    if warning is not None:
        warn(ctx, warning)


async def _cancel(queue: Queue, job_id: str) -> None:
    await queue.cancel(job_id)


@strawberry.type
class Mutation:
    @described.mutation(
        "Enqueue a job; `data` is checked against the handler's payload model. When no live worker handles the "
        "type, the job is added all the same and the response's `extensions.warnings` says so."
    )
    async def add_job(
        self,
        info: ApiInfo,
        queue_name: str,
        type: str,
        data: JSON | None = None,
        options: JobOptionsInput | None = None,
    ) -> JobNode:
        ctx = info.context
        require(ctx, Role.OPERATOR, queue_name)
        job_id = await ctx.app.add(queue_name, type, data, options_of(options), warn_unserved=False)
        await _warn_if_unserved(ctx, queue_name, [type])
        return await snapshot(ctx.app.queue(queue_name), job_id)

    @described.mutation("Enqueue many jobs at once; all are validated before any is written. Warns as `addJob` does.")
    async def add_jobs(self, info: ApiInfo, queue_name: str, jobs: list[NewJobInput]) -> list[JobNode]:
        ctx = info.context
        require(ctx, Role.OPERATOR, queue_name)
        check_batch(ctx, len(jobs), "`jobs`")
        new = [NewJob(job.type, job.data, options_of(job.options)) for job in jobs]
        ids = await ctx.app.add_bulk(queue_name, new, warn_unserved=False)
        await _warn_if_unserved(ctx, queue_name, [job.type for job in jobs])
        return [await snapshot(ctx.app.queue(queue_name), job_id) for job_id in ids]

    @described.mutation("Stop workers from starting jobs of the queue; active jobs finish.")
    async def pause_queue(self, info: ApiInfo, name: str) -> bool:
        require(info.context, Role.OPERATOR, name)
        await info.context.app.queue(name).pause()
        return True

    @described.mutation("Let workers start jobs of the queue again.")
    async def resume_queue(self, info: ApiInfo, name: str) -> bool:
        require(info.context, Role.OPERATOR, name)
        await info.context.app.queue(name).resume()
        return True

    @described.mutation("Delete every job of the queue (admin). Refused while jobs run unless `force`.")
    async def clear_queue(self, info: ApiInfo, name: str, force: bool = False) -> bool:
        require(info.context, Role.ADMIN, name)
        await info.context.app.queue(name).clear(force=force)
        return True

    @described.mutation("Move a failed job back to waiting with fresh attempts.")
    async def retry_job(self, info: ApiInfo, queue: str, id: strawberry.ID) -> JobNode:
        require(info.context, Role.OPERATOR, queue)
        target = info.context.app.queue(queue)
        await target.retry(str(id))
        return await snapshot(target, str(id))

    @described.mutation("Retry failed jobs by id.")
    async def retry_jobs(self, info: ApiInfo, queue: str, ids: list[strawberry.ID]) -> BulkResult:
        require(info.context, Role.OPERATOR, queue)
        return await for_each(info.context, queue, ids, Queue.retry)

    @described.mutation("Retry the failed (or completed) jobs matching a filter; reports how many.")
    async def retry_jobs_where(
        self, info: ApiInfo, queue: str, filter: JobFilterInput | None = None, dry_run: bool = False, limit: int = 1000
    ) -> RetryWhereResult:
        require(info.context, Role.OPERATOR, queue)
        if not 0 < limit <= MAX_RETRY_WHERE:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`limit` must be between 1 and {MAX_RETRY_WHERE}.")
        chosen = filter.to_filter() if filter is not None else JobFilter((JobState.FAILED,))
        report = await retry_where(info.context.app.queue(queue), chosen, dry_run=dry_run, limit=limit)
        ids = [strawberry.ID(job_id) for job_id in report.job_ids[: info.context.config.max_page_size]]
        return RetryWhereResult(
            matched=report.matched, retried=report.retried, skipped=report.skipped, dry_run=dry_run,
            truncated=report.truncated, job_ids=ids,
        )  # fmt: skip

    @described.mutation("Run a delayed job now.")
    async def promote_job(self, info: ApiInfo, queue: str, id: strawberry.ID) -> JobNode:
        require(info.context, Role.OPERATOR, queue)
        target = info.context.app.queue(queue)
        await target.promote(str(id))
        return await snapshot(target, str(id))

    @described.mutation("Run delayed jobs now, by id.")
    async def promote_jobs(self, info: ApiInfo, queue: str, ids: list[strawberry.ID]) -> BulkResult:
        require(info.context, Role.OPERATOR, queue)
        return await for_each(info.context, queue, ids, Queue.promote)

    @described.mutation("Delete a job that is not active (cancel an active one instead).")
    async def remove_job(self, info: ApiInfo, queue: str, id: strawberry.ID) -> bool:
        require(info.context, Role.OPERATOR, queue)
        await info.context.app.queue(queue).remove(str(id))
        return True

    @described.mutation("Delete jobs that are not active, by id.")
    async def remove_jobs(self, info: ApiInfo, queue: str, ids: list[strawberry.ID]) -> BulkResult:
        require(info.context, Role.OPERATOR, queue)
        return await for_each(info.context, queue, ids, Queue.remove)

    @described.mutation("Cancel a job: a pending one is removed, an active one is asked to stop.")
    async def cancel_job(self, info: ApiInfo, queue: str, id: strawberry.ID) -> CancelResult:
        require(info.context, Role.OPERATOR, queue)
        previous = await info.context.app.queue(queue).cancel(str(id))
        return CancelResult(job_id=id, queue=queue, previous_state=previous, removed=previous is not JobState.ACTIVE)

    @described.mutation("Cancel jobs by id.")
    async def cancel_jobs(self, info: ApiInfo, queue: str, ids: list[strawberry.ID]) -> BulkResult:
        require(info.context, Role.OPERATOR, queue)
        return await for_each(info.context, queue, ids, _cancel)

    @described.mutation(
        "Create an API token (admin without queue scope); with `tenant`, limited to that tenant. The secret is shown "
        "once."
    )
    async def create_api_token(
        self, info: ApiInfo, name: str, role: RoleEnum, queues: list[str] | None = None, tenant: str | None = None
    ) -> CreatedApiToken:
        ctx = info.context
        require_token_admin(ctx)
        known = ctx.app.queue_names
        issued = await ctx.tokens.create(name, role_of(role), queues, known_queues=known, tenant=tenant)
        return CreatedApiToken(token=issued.token, info=ApiTokenNode.of(issued.info))

    @described.mutation("Revoke an API token by id (admin without queue scope).")
    async def revoke_api_token(self, info: ApiInfo, id: strawberry.ID) -> bool:
        require_token_admin(info.context)
        return await info.context.tokens.revoke(str(id))
