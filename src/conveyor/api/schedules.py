"""Schedules in the API: list them, create or update one by key (idempotent), remove one."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from conveyor.api import fields as described
from conveyor.api.auth import require, visible_queues
from conveyor.api.context import ApiContext, ApiInfo
from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.inputs import JobOptionsInput, options_of
from conveyor.api.tokens import Role
from conveyor.api.warnings import warn
from conveyor.queue.schedules import Schedule, ScheduleNotFoundError, Schedules, schedule_spec


@strawberry.enum(name="CatchUp", description="What a tick missed while no scheduler ran becomes.")
class CatchUpEnum(Enum):
    ONCE = "once"
    SKIP = "skip"


@strawberry.type(name="Schedule", description="A job added on every tick of a cron expression or an interval.")
class ScheduleNode:
    key: str
    queue: str
    type: str
    data: JSON | None
    options: JSON = strawberry.field(description="The job options of each tick's job.")
    cron: str | None
    every_ms: float | None = strawberry.field(description="The interval in milliseconds (instead of `cron`).")
    tz: str
    catch_up: CatchUpEnum
    next_run: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleNode:
        spec = schedule.spec
        return cls(
            key=spec.key,
            queue=spec.queue,
            type=spec.type,
            data=spec.data,
            options=JSON(spec.options.model_dump(mode="json", exclude_defaults=True)),
            cron=spec.cron,
            every_ms=spec.every_ms,
            tz=spec.tz,
            catch_up=CatchUpEnum(spec.catch_up),
            next_run=schedule.next_run,
            created_at=schedule.created_at,
            updated_at=schedule.updated_at,
        )


@strawberry.input(name="ScheduleInput", description="A schedule: exactly one of `cron` or `everyMs`.")
class ScheduleInput:
    key: str = strawberry.field(description="Names the schedule; saving the same key again updates it.")
    queue: str
    type: str
    data: JSON | None = None
    options: JobOptionsInput | None = None
    cron: str | None = strawberry.field(
        default=None, description="5 fields, or 6 with seconds first (`*/10 * * * * *`), on the `tz` wall clock."
    )
    every_ms: float | None = None
    tz: str = "UTC"
    catch_up: CatchUpEnum = CatchUpEnum.ONCE


async def _require_replaceable(ctx: ApiContext, key: str) -> None:
    """Saving over an existing key changes that schedule: the caller must be allowed its queue too."""
    try:
        existing = await Schedules.of(ctx.app).get(key)
    except ScheduleNotFoundError:
        return
    if not require(ctx, Role.OPERATOR).may_access(existing.spec.queue):
        raise ApiError(
            ErrorCode.FORBIDDEN,
            f"A schedule with key {key!r} exists in a queue outside this token's scope; choose another key.",
        )


@strawberry.type
class ScheduleQuery:
    @described.field("Every schedule of the queues the caller may see, by key.")
    async def schedules(self, info: ApiInfo) -> list[ScheduleNode]:
        visible = set(visible_queues(info.context))
        found = await Schedules.of(info.context.app).all()
        return [ScheduleNode.of(schedule) for schedule in found if schedule.spec.queue in visible]

    @described.field("One schedule by key (null when there is none).")
    async def schedule(self, info: ApiInfo, key: str) -> ScheduleNode | None:
        try:
            schedule = await Schedules.of(info.context.app).get(key)
        except ScheduleNotFoundError:
            return None
        require(info.context, Role.VIEWER, schedule.spec.queue)
        return ScheduleNode.of(schedule)


@strawberry.type
class ScheduleMutation:
    @described.mutation(
        "Create or update a schedule by key; saving an unchanged schedule keeps its next tick. When no live "
        "worker handles its job type, it is saved all the same and the response's `extensions.warnings` says so."
    )
    async def save_schedule(self, info: ApiInfo, schedule: ScheduleInput) -> ScheduleNode:
        ctx = info.context
        require(ctx, Role.OPERATOR, schedule.queue)
        await _require_replaceable(ctx, schedule.key)
        every = int(schedule.every_ms) if schedule.every_ms is not None else None
        spec = schedule_spec(
            key=schedule.key, queue=schedule.queue, type=schedule.type, data=schedule.data,
            options=options_of(schedule.options), cron=schedule.cron, every_ms=every, tz=schedule.tz,
            catch_up=schedule.catch_up.value,
        )  # fmt: skip
        saved = await Schedules.of(ctx.app).add(spec)
        warning = await ctx.app.unserved_warning(spec.queue, [spec.type])
        if warning is not None:
            warn(ctx, warning)
        return ScheduleNode.of(saved)

    @described.mutation("Remove a schedule (jobs it already added stay); false when there was none.")
    async def remove_schedule(self, info: ApiInfo, key: str) -> bool:
        ctx = info.context
        schedules = Schedules.of(ctx.app)
        try:
            existing = await schedules.get(key)
        except ScheduleNotFoundError:
            require(ctx, Role.OPERATOR)
            return False
        require(ctx, Role.OPERATOR, existing.spec.queue)
        return await schedules.remove(key)
