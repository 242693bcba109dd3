"""How a schedule is stored as a BullMQ job scheduler, and read back from one (made by either runtime).

BullMQ's fields say what Node needs: `name` (the job type), `pattern` + `tz` (cron, seconds allowed) or `every`
(+ `startDate`, the first multiple of the interval, so an interval ticks on multiples of it as Conveyor's always
did), `data` and `opts` (the template). What BullMQ cannot express is kept in `conveyor.*` fields, which Node
ignores: the whole spec (catch-up policy, options), the queue defaults it was saved with, and when it was created
and changed. A scheduler made in Node has no `conveyor.*` fields: its spec is read from BullMQ's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from conveyor.config import QueueSettings
from conveyor.queue.errors import ScheduleNotReplicatedError
from conveyor.queue.job import from_ms
from conveyor.queue.options import bullmq_options
from conveyor.queue.queue import Queue, encode_payload
from conveyor.queue.schedule_spec import ScheduleSpec, next_tick
from conveyor.redis.job_schedulers import JobSchedulerStore, StoredScheduler, raise_scheduler_error
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline

SPEC_FIELD = "conveyor.spec"
DEFAULTS_FIELD = "conveyor.defaults"
CREATED_FIELD = "conveyor.created"
UPDATED_FIELD = "conveyor.updated"


@dataclass(frozen=True)
class Schedule:
    """A stored schedule: its spec, the defaults of its queue when it was saved, its next tick and how many
    runs it has added so far (BullMQ's iteration count)."""

    spec: ScheduleSpec
    defaults: QueueSettings
    created_at: datetime
    updated_at: datetime
    next_run: datetime | None
    iterations: int = 0

    @property
    def key(self) -> str:
        """The schedule's key."""
        return self.spec.key


def bullmq_spec(spec: ScheduleSpec, first_ms: int) -> dict[str, Any]:
    """The scheduler options BullMQ's `addJobScheduler` takes (`name`, `pattern`/`tz` or `every`/`startDate`)."""
    if spec.cron is not None:
        return {"name": spec.type, "pattern": spec.cron, "tz": spec.tz}
    return {"name": spec.type, "every": spec.every_ms, "startDate": first_ms}


def repeat_options(spec: ScheduleSpec, count: int) -> dict[str, Any]:
    """The `repeat` option BullMQ puts in each run's job (a Node worker reads the pattern from it)."""
    if spec.cron is not None:
        return {"pattern": spec.cron, "tz": spec.tz, "count": count}
    return {"every": spec.every_ms, "count": count}


def template_options(spec: ScheduleSpec, defaults: QueueSettings, now_ms: int) -> dict[str, Any]:
    """The job options every run's job gets (BullMQ's field names), without the per-job ones."""
    opts = bullmq_options(spec.options, defaults, now_ms)
    for per_job in ("delay", "timestamp", "jobId"):
        opts.pop(per_job, None)
    return opts


def run_job_options(spec: ScheduleSpec, defaults: QueueSettings, run_ms: int, now_ms: int) -> dict[str, Any]:
    """The options of the job of the first run (BullMQ's scheduler fields included)."""
    opts = template_options(spec, defaults, now_ms)
    opts.update(timestamp=now_ms, prevMillis=run_ms, repeatJobKey=spec.key, repeat=repeat_options(spec, 1))
    return opts


def conveyor_fields(spec: ScheduleSpec, defaults: QueueSettings, created_ms: int, updated_ms: int) -> dict[str, str]:
    """The `conveyor.*` fields of a scheduler hash."""
    return {
        SPEC_FIELD: json.dumps(spec.model_dump(mode="json"), separators=(",", ":")),
        DEFAULTS_FIELD: json.dumps(defaults.model_dump(mode="json"), separators=(",", ":")),
        CREATED_FIELD: str(created_ms),
        UPDATED_FIELD: str(updated_ms),
    }


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def _spec_fields(stored: StoredScheduler, queue: str) -> dict[str, Any]:
    """A spec's fields from BullMQ's fields (a scheduler made by Node)."""
    fields = stored.fields
    try:
        data = json.loads(fields["data"]) if fields.get("data") else None
    except ValueError:
        data = None
    every = _int(fields.get("every"))
    return {
        "key": stored.scheduler_id,
        "queue": queue,
        "type": fields.get("name") or "default",
        "data": data,
        "cron": fields.get("pattern") or None,
        "every_ms": every if not fields.get("pattern") else None,
        "tz": fields.get("tz") or "UTC",
    }


def read_schedule(stored: StoredScheduler, queue: str) -> Schedule:
    """The schedule a stored job scheduler holds."""
    fields = stored.fields
    raw_spec = fields.get(SPEC_FIELD)
    try:
        spec = (
            ScheduleSpec.model_validate_json(raw_spec)
            if raw_spec
            else ScheduleSpec.model_validate(_spec_fields(stored, queue))
        )
    except ValidationError:  # a Node pattern Conveyor's cron parser does not know: shown as it is
        spec = ScheduleSpec.model_construct(**_spec_fields(stored, queue))
    try:
        defaults = QueueSettings.model_validate_json(fields[DEFAULTS_FIELD])
    except (KeyError, ValidationError):
        defaults = QueueSettings()
    epoch = datetime.fromtimestamp(0, UTC)
    return Schedule(
        spec=spec,
        defaults=defaults,
        created_at=from_ms(_int(fields.get(CREATED_FIELD))) or epoch,
        updated_at=from_ms(_int(fields.get(UPDATED_FIELD))) or epoch,
        next_run=from_ms(stored.next_ms),
        iterations=_int(fields.get("ic")) or 0,
    )


def created_ms(stored: StoredScheduler | None, now_ms: int) -> int:
    """When a schedule was first created (now, for a new one or one made by Node)."""
    return (_int(stored.fields.get(CREATED_FIELD)) if stored else None) or now_ms


async def save_schedule(
    queue: Queue, spec: ScheduleSpec, defaults: QueueSettings, created: int | None, now_ms: int
) -> None:
    """Write `spec` as the job scheduler `spec.key` of `queue` (replacing its spec, keeping its next run when
    an interval is unchanged) and queue its next run's job. `created`: when it was first made (None: now).

    Raises:
        ScheduleNotReplicatedError: durable mode only: saved on the master, not confirmed by replicas in time.
    """
    store = JobSchedulerStore(queue.client, queue.keys)
    first = next_tick(spec, now_ms)
    data_json = encode_payload({} if spec.data is None else spec.data, 1 << 62)  # size checked by the caller
    write = ReplicatedPipeline(queue.client, queue.replica_wait, atomic=True) if queue.replica_wait else None
    pipe = write.pipe if write else queue.client.pipeline(transaction=True)
    await store.upsert(
        spec.key, next_ms=first, spec=bullmq_spec(spec, first), data_json=data_json,
        template_opts=template_options(spec, defaults, now_ms),
        job_opts=run_job_options(spec, defaults, first, now_ms), now_ms=now_ms, pipe=pipe,
    )  # fmt: skip
    fields = conveyor_fields(spec, defaults, created or now_ms, now_ms)
    pipe.hset(queue.keys.job_scheduler(spec.key), mapping=fields)  # type: ignore[arg-type]
    try:
        results = await (write.execute() if write else pipe.execute())
    except NotReplicatedError as exc:
        raise ScheduleNotReplicatedError(spec.key, exc.acknowledged, exc.wait.describe()) from exc
    raise_scheduler_error(results[0], spec.key)


def next_run_ms(schedule: Schedule, run_ms: int, now_ms: int) -> int:
    """When the run after `run_ms` is, for a worker that takes the job of `run_ms` at `now_ms`: a cron's next tick
    after both (missed ticks are not added: the late run's job itself is the catch-up), or the next multiple of
    an interval (which BullMQ's script computes again the same way)."""
    spec = schedule.spec
    if spec.cron is not None:
        return next_tick(spec, max(now_ms, run_ms))
    return run_ms + int(spec.every_ms or 0)


def next_run_options(job_opts: dict[str, Any], schedule: Schedule, next_ms: int, now_ms: int) -> dict[str, Any]:
    """The options of the next run's job, from those of the run's job just taken (as BullMQ's worker does)."""
    opts = {name: value for name, value in job_opts.items() if name not in ("delay", "jobId")}
    repeat = dict(opts.get("repeat") or {})
    repeat.update(repeat_options(schedule.spec, int(repeat.get("count") or schedule.iterations or 0) + 1))
    opts.update(timestamp=now_ms, prevMillis=next_ms, repeatJobKey=schedule.key, repeat=repeat)
    return opts
