"""What a schedule is and when it ticks: a job type added on every tick of a cron expression (with seconds and a
time zone) or a fixed interval. Pure functions of the spec and a time; storage is `conveyor.queue.schedules`.

Cron expressions have 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first
(`*/10 * * * * *`: every ten seconds), evaluated in the schedule's IANA time zone on the wall clock: a time
skipped by a daylight-saving change runs an hour later, a time that occurs twice runs once (the first time).
Intervals (`every_ms`) tick on multiples of the interval since the epoch. Each tick's job has BullMQ's id of a
job scheduler's run, `repeat:<key>:<tick ms>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from conveyor.queue.errors import InvalidOptionsError
from conveyor.queue.options import JobOptions
from conveyor.redis.job_schedulers import iteration_job_id

if TYPE_CHECKING:
    from croniter import croniter

SCHEDULE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
MISFIRE_GRACE_MS = 1000  # a tick fired later than this counts as missed (run once, or skipped, by option)
CatchUp = Literal["once", "skip"]


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
            raise ValueError("a schedule names each tick's job itself (repeat:<key>:<tick>); leave job_id unset")
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


def _croniter() -> type[croniter]:
    # croniter (with pytz and dateutil) loads on the first cron expression, not with every worker: most
    # workers never see one, and it costs start-up time and memory.
    from croniter import croniter as loaded

    return cast("type[croniter]", loaded)


def _is_valid_cron(expr: str) -> bool:
    if len(expr.split()) not in (5, 6):
        return False
    return bool(_croniter().is_valid(expr, **_cron_args(expr)))


def tick_job_id(key: str, tick_ms: int) -> str:
    """The id of the job a schedule adds for one tick (BullMQ's id of a job scheduler's run)."""
    return iteration_job_id(key, tick_ms)


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
    candidates = _croniter()(spec.cron, start, **_cron_args(spec.cron or ""))
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
    candidates = _croniter()(spec.cron, wall, **_cron_args(spec.cron or ""))
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
