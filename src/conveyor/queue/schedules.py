"""Schedules: a job added on every tick of a cron expression (with seconds and a time zone) or a fixed interval.

A schedule is stored by key, so creating it again with the same spec changes nothing (idempotent from code, the
CLI or the API) and creating it with another spec replaces it. Each tick's job gets the id
`sched-<key>-<tick ms>`: whoever adds a tick twice (two schedulers, a retry) adds nothing the second time. The
scheduler that fires ticks is a worker duty (`conveyor.worker.scheduler`); this module stores schedules and
decides, for a due tick, what to fire and when the next tick is.

Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first
(`*/10 * * * * *`: every ten seconds), evaluated in the schedule's IANA time zone on the wall clock: a time
skipped by a daylight-saving change runs an hour later, a time that occurs twice runs once (the first time).
Intervals (`every_ms`) tick on multiples of the interval since the epoch.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from redis.asyncio import Redis

from conveyor.config import QueueSettings
from conveyor.queue.errors import InvalidOptionsError, QueueError, ScheduleNotReplicatedError
from conveyor.queue.job import from_ms
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import Queue, encode_payload
from conveyor.queue.source import QueueSource, namespace
from conveyor.queue.tenants import admit
from conveyor.redis.keys import ConveyorKeys
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline

SCHEDULE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MISFIRE_GRACE_MS = 1000  # a tick fired later than this counts as missed (run once, or skipped, by option)
CatchUp = Literal["once", "skip"]

# KEYS: ticks zset. ARGV: key, the tick just handled, the next tick. Moves the schedule on only if no one else did.
_ADVANCE = """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
"""


class ScheduleNotFoundError(QueueError):
    """No schedule with that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"No schedule {key!r}; list them with `conveyor schedule list`.")
        self.key = key


class ScheduleSpec(BaseModel):
    """What a schedule adds and when: exactly one of `cron` or `every_ms`.

    `catch_up`: a tick missed while no scheduler ran (everything was down) runs `once` when scheduling resumes
    (one job for the latest missed tick, however many were missed), or is `skip`ped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=SCHEDULE_KEY.pattern)
    queue: str
    type: str = Field(min_length=1, max_length=256)
    data: Any = None
    options: JobOptions = Field(default_factory=JobOptions)
    cron: str | None = None
    every_ms: int | None = Field(default=None, ge=10, le=366 * 24 * 3600 * 1000)
    tz: str = "UTC"
    catch_up: CatchUp = "once"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name like UTC or Europe/Paris") from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None and not _is_valid_cron(value):
            raise ValueError(
                f"invalid cron expression {value!r}: use 5 fields (minute hour day month weekday) "
                "or 6 with seconds first, e.g. '*/10 * * * * *'"
            )
        return value

    @field_validator("options")
    @classmethod
    def _no_fixed_id(cls, value: JobOptions) -> JobOptions:
        if value.job_id is not None:
            raise ValueError("a schedule names each tick's job itself (sched-<key>-<tick>); leave job_id unset")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSpec:
        if (self.cron is None) == (self.every_ms is None):
            raise ValueError("give exactly one of `cron` (an expression) or `every_ms` (an interval)")
        return self

    def describe(self) -> str:
        """`cron '0 9 * * *' (Europe/Paris)` or `every 5000 ms`."""
        return f"cron {self.cron!r} ({self.tz})" if self.cron else f"every {self.every_ms} ms"


def schedule_spec(**fields: Any) -> ScheduleSpec:
    """A `ScheduleSpec` from keywords, raising `InvalidOptionsError` naming each bad field."""
    try:
        return ScheduleSpec(**fields)
    except ValidationError as exc:
        names = [".".join(str(p) for p in err["loc"]) or "schedule" for err in exc.errors()]
        details = "; ".join(f"{name}: {err['msg']}" for name, err in zip(names, exc.errors(), strict=True))
        raise InvalidOptionsError(f"Invalid schedule: {details}", names) from exc


def _cron_args(expr: str) -> dict[str, Any]:
    return {"second_at_beginning": len(expr.split()) == 6}


def _is_valid_cron(expr: str) -> bool:
    if len(expr.split()) not in (5, 6):
        return False
    return bool(croniter.is_valid(expr, **_cron_args(expr)))


def tick_job_id(key: str, tick_ms: int) -> str:
    """The id of the job a schedule adds for one tick."""
    return f"sched-{key}-{tick_ms}"


# --- when the ticks are (pure functions of the spec and a time) ---------------------------------------------------


def _instant(wall: datetime, zone: ZoneInfo) -> int:
    """The instant (ms) of a wall-clock time in a zone: the first occurrence of a time that occurs twice, and
    for a time skipped by a daylight-saving change, the instant an hour later (zoneinfo's `fold=0`)."""
    return int(wall.replace(tzinfo=zone, fold=0).timestamp() * 1000)


def next_tick(spec: ScheduleSpec, after_ms: int) -> int:
    """The first tick strictly after `after_ms`."""
    if spec.every_ms is not None:
        return (after_ms // spec.every_ms + 1) * spec.every_ms
    zone = ZoneInfo(spec.tz)
    start = datetime.fromtimestamp(after_ms / 1000, zone).replace(tzinfo=None)
    candidates = croniter(spec.cron, start, **_cron_args(spec.cron or ""))
    while True:  # past wall times come up again only right after clocks went back: a few steps at most
        instant = _instant(candidates.get_next(datetime), zone)
        if instant > after_ms:
            return instant


def latest_tick(spec: ScheduleSpec, at_ms: int, since_ms: int) -> int:
    """The last tick at or before `at_ms` (never before `since_ms`, a tick known to be due)."""
    if spec.every_ms is not None:
        return max(since_ms, at_ms // spec.every_ms * spec.every_ms)
    zone = ZoneInfo(spec.tz)
    wall = datetime.fromtimestamp((at_ms + 1) / 1000, zone).replace(tzinfo=None)
    candidates = croniter(spec.cron, wall, **_cron_args(spec.cron or ""))
    while True:
        instant = _instant(candidates.get_prev(datetime), zone)
        if instant <= at_ms:
            return max(since_ms, instant)


@dataclass(frozen=True, slots=True)
class TickPlan:
    """For a due tick: which tick to add a job for (None: skip) and when the schedule ticks next."""

    fire: int | None
    next: int


def plan_tick(spec: ScheduleSpec, tick_ms: int, now_ms: int, grace_ms: int = MISFIRE_GRACE_MS) -> TickPlan:
    """What to do about a tick that is due at `now_ms`. On time (within `grace_ms`): fire it. Missed (the
    schedulers were down): fire the latest missed tick once, or skip, by the spec's `catch_up`."""
    if now_ms - tick_ms <= grace_ms:
        return TickPlan(tick_ms, next_tick(spec, tick_ms))
    latest = latest_tick(spec, now_ms, tick_ms)
    on_time = now_ms - latest <= grace_ms
    fire = latest if on_time or spec.catch_up == "once" else None
    return TickPlan(fire, next_tick(spec, latest))


# --- storage ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A stored schedule: its spec, the defaults of its queue when it was saved, and its next tick."""

    spec: ScheduleSpec
    defaults: QueueSettings
    created_at: datetime
    updated_at: datetime
    next_run: datetime | None

    @property
    def key(self) -> str:
        """The schedule's key."""
        return self.spec.key


def _record(spec: ScheduleSpec, defaults: QueueSettings, created: int, updated: int) -> str:
    body = {"spec": spec.model_dump(mode="json"), "defaults": defaults.model_dump(mode="json")}
    return json.dumps({**body, "created": created, "updated": updated}, separators=(",", ":"))


def _parse(raw: str, next_ms: float | None) -> Schedule:
    record = json.loads(raw)
    epoch = datetime.fromtimestamp(0, UTC)
    return Schedule(
        spec=ScheduleSpec.model_validate(record["spec"]),
        defaults=QueueSettings.model_validate(record.get("defaults") or {}),
        created_at=from_ms(record.get("created")) or epoch,
        updated_at=from_ms(record.get("updated")) or epoch,
        next_run=from_ms(int(next_ms)) if next_ms is not None else None,
    )


class Schedules:
    """The schedules of one namespace: create (idempotently, by key), list, remove; and, for the scheduler,
    what is due and moving a schedule on to its next tick."""

    def __init__(
        self,
        client: Redis,
        keys: ConveyorKeys,
        queue_for: Callable[[str], Queue] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.queue_for = queue_for
        self._clock = clock
        self._advance = client.register_script(_ADVANCE)

    @classmethod
    def of(cls, source: QueueSource, clock: Callable[[], float] = time.time) -> Schedules:
        """The schedules of an app (or a tenant's view of it): `Schedules.of(app)`."""
        client, keys = namespace(source)
        return cls(client, keys, source.queue, clock)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def add(self, spec: ScheduleSpec | None = None, /, **fields: Any) -> Schedule:
        """Create or update a schedule (a spec, or its fields as keywords). Saving the same spec again keeps its
        next tick; a changed spec starts over from now.

        Raises:
            InvalidOptionsError: a field is invalid. UnknownQueueError: the queue does not exist.
            InvalidPayloadError / PayloadTooLargeError: the payload cannot be stored.
            ScheduleNotReplicatedError: durable mode only: saved on the master, not confirmed by replicas in time.
        """
        spec = spec or schedule_spec(**fields)
        if self.queue_for is None:
            raise QueueError("These schedules were opened without queues; open them with `Schedules.of(app)`.")
        queue = self.queue_for(spec.queue)  # UnknownQueueError for a queue the app does not have
        await admit(queue, 0)  # a tenant's queue: its payload limit
        encode_payload({} if spec.data is None else spec.data, queue.max_payload_bytes)
        now = self._now_ms()
        current = cast("str | None", await self.client.hget(self.keys.schedules, spec.key))
        if current is not None:
            stored = _parse(current, None)
            if stored.spec == spec and stored.defaults == queue.defaults:
                return await self.get(spec.key)
        created = json.loads(current)["created"] if current is not None else now
        write = ReplicatedPipeline(self.client, queue.replica_wait, atomic=True) if queue.replica_wait else None
        pipe = write.pipe if write else self.client.pipeline(transaction=True)
        pipe.hset(self.keys.schedules, spec.key, _record(spec, queue.defaults, created, now))
        pipe.zadd(self.keys.schedule_ticks, {spec.key: next_tick(spec, now)})
        pipe.publish(self.keys.schedules_changed, spec.key)
        try:
            await (write.execute() if write else pipe.execute())
        except NotReplicatedError as exc:
            raise ScheduleNotReplicatedError(spec.key, exc.acknowledged, exc.wait.describe()) from exc
        return await self.get(spec.key)

    async def get(self, key: str) -> Schedule:
        """One schedule, or `ScheduleNotFoundError`."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(self.keys.schedules, key)
        pipe.zscore(self.keys.schedule_ticks, key)
        raw, next_ms = await pipe.execute()
        if raw is None:
            raise ScheduleNotFoundError(key)
        return _parse(raw, next_ms)

    async def all(self) -> list[Schedule]:
        """Every schedule, by key."""
        raw = cast("dict[str, str]", await self.client.hgetall(self.keys.schedules))
        ticks = dict(
            cast("list[tuple[str, float]]", await self.client.zrange(self.keys.schedule_ticks, 0, -1, withscores=True))
        )
        return [_parse(raw[key], ticks.get(key)) for key in sorted(raw)]

    async def remove(self, key: str) -> bool:
        """Delete a schedule; False when there was none. Jobs already added stay."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.schedules, key)
        pipe.zrem(self.keys.schedule_ticks, key)
        pipe.publish(self.keys.schedules_changed, key)
        removed, _, _ = await pipe.execute()
        return bool(removed)

    # --- for the scheduler ------------------------------------------------------------------------------

    async def due(self, now_ms: int, limit: int = 100) -> list[tuple[str, int]]:
        """Schedules whose next tick is at or before `now_ms`: `(key, tick)`, earliest first."""
        found = await self.client.zrangebyscore(self.keys.schedule_ticks, "-inf", now_ms, 0, limit, withscores=True)
        return [(str(key), int(score)) for key, score in cast("list[tuple[str, float]]", found)]

    async def next_due_ms(self) -> int | None:
        """The earliest next tick of any schedule, or None without schedules."""
        first = cast(
            "list[tuple[str, float]]", await self.client.zrange(self.keys.schedule_ticks, 0, 0, withscores=True)
        )
        return int(first[0][1]) if first else None

    async def advance(self, key: str, tick_ms: int, next_ms: int) -> bool:
        """Move a schedule from `tick_ms` to `next_ms`, unless someone already moved (or removed) it."""
        return bool(await self._advance(keys=[self.keys.schedule_ticks], args=[key, tick_ms, next_ms]))
