"""Housekeeping of a queue, as Bull Board users know it: clean finished jobs older than a grace period, promote
every delayed job; and a look at the Redis server under the deployment (version, memory, clients, eviction)."""

from __future__ import annotations

from typing import Any

import strawberry
from redis.exceptions import NoPermissionError

from conveyor.api import fields as described
from conveyor.api.auth import require
from conveyor.api.context import ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.tokens import Role
from conveyor.queue.job import JobState

MAX_CLEAN = 10_000
MAX_PROMOTE = 10_000


@strawberry.type(description="What `cleanJobs` deleted.")
class CleanResult:
    queue: str
    state: JobState
    removed: int
    job_ids: list[strawberry.ID] = strawberry.field(description="The deleted jobs' ids (the first page of them).")


@strawberry.type(description="The Redis server under the deployment, from its INFO.")
class RedisInfo:
    version: str
    mode: str = strawberry.field(description="standalone, sentinel or cluster.")
    role: str = strawberry.field(description="master or replica.")
    uptime_seconds: int
    connected_clients: int
    blocked_clients: int
    used_memory_bytes: float = strawberry.field(description="Bytes (a Float: memory can exceed a GraphQL Int).")
    used_memory_peak_bytes: float
    max_memory_bytes: float | None = strawberry.field(description="The `maxmemory` limit; null when there is none.")
    eviction_policy: str | None = strawberry.field(
        description="`maxmemory-policy`; BullMQ needs `noeviction`, or Redis may drop queue keys under pressure."
    )

    @classmethod
    def of(cls, info: dict[str, Any]) -> RedisInfo:
        """From redis-py's parsed INFO."""
        max_memory = float(info.get("maxmemory") or 0)
        return cls(
            version=str(info.get("redis_version", "unknown")),
            mode=str(info.get("redis_mode", "standalone")),
            role=str(info.get("role", "unknown")),
            uptime_seconds=int(info.get("uptime_in_seconds") or 0),
            connected_clients=int(info.get("connected_clients") or 0),
            blocked_clients=int(info.get("blocked_clients") or 0),
            used_memory_bytes=float(info.get("used_memory") or 0),
            used_memory_peak_bytes=float(info.get("used_memory_peak") or 0),
            max_memory_bytes=max_memory or None,
            eviction_policy=str(info["maxmemory_policy"]) if "maxmemory_policy" in info else None,
        )


@strawberry.type
class HousekeepingQuery:
    @described.field(
        "The Redis server's version, memory, clients and eviction policy. It is shared by every queue and "
        "tenant, so it needs a token without queue scope or tenant (any role)."
    )
    async def redis_info(self, info: ApiInfo) -> RedisInfo:
        principal = require(info.context, Role.VIEWER)
        if principal.queues is not None or principal.tenant is not None:
            raise ApiError(
                ErrorCode.FORBIDDEN, "Redis info covers every queue: use a token without queue scope or tenant."
            )
        try:
            return RedisInfo.of(await info.context.state.app.client.info())
        except NoPermissionError as exc:
            raise ApiError(
                ErrorCode.FORBIDDEN, "Redis does not allow INFO to Conveyor's user (an ACL rule): grant +info."
            ) from exc


@strawberry.type
class HousekeepingMutation:
    @described.mutation(
        "Delete completed or failed jobs that finished more than `olderThanMs` ago (a grace period; 0: all of "
        "them), at most `limit` per call. Dead letters are kept."
    )
    async def clean_jobs(
        self, info: ApiInfo, queue: str, state: JobState, older_than_ms: int, limit: int = 1000
    ) -> CleanResult:
        ctx = info.context
        require(ctx, Role.OPERATOR, queue)
        if state not in (JobState.COMPLETED, JobState.FAILED):
            raise ApiError(
                ErrorCode.BAD_USER_INPUT, "`state` must be COMPLETED or FAILED: only finished jobs are cleaned."
            )
        if older_than_ms < 0:
            raise ApiError(ErrorCode.BAD_USER_INPUT, "`olderThanMs` must be 0 or more.")
        if not 0 < limit <= MAX_CLEAN:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`limit` must be between 1 and {MAX_CLEAN}.")
        removed = await ctx.app.queue(queue).clean(state, older_than_ms, limit)
        ids = [strawberry.ID(job_id) for job_id in removed[: ctx.config.max_page_size]]
        return CleanResult(queue=queue, state=state, removed=len(removed), job_ids=ids)

    @described.mutation("Run every delayed job of the queue now (at most `limit`); returns how many were promoted.")
    async def promote_delayed_jobs(self, info: ApiInfo, queue: str, limit: int = MAX_PROMOTE) -> int:
        require(info.context, Role.OPERATOR, queue)
        if not 0 < limit <= MAX_PROMOTE:
            raise ApiError(ErrorCode.LIMIT_EXCEEDED, f"`limit` must be between 1 and {MAX_PROMOTE}.")
        return await info.context.app.queue(queue).promote_delayed(limit)
