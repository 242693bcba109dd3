"""Schedules, stored as BullMQ job schedulers: Node's `getJobSchedulers()` lists the ones made here, `conveyor
schedule list` lists the ones made in Node, and workers of either runtime run them (see
`conveyor.redis.job_schedulers` for the keys and how each run's job adds the next).

A schedule is stored by key, so creating it again with the same spec changes nothing (idempotent from code, the
CLI or the API) and creating it with another spec replaces it. BullMQ's scheduler ids are per queue; a
Conveyor schedule key is unique in its namespace (saving a key for another queue moves it there). Schedules
stored the way Conveyor did before are migrated the first time they are opened (`schedule_migration`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from conveyor.queue.errors import QueueError
from conveyor.queue.queue import Queue, encode_payload
from conveyor.queue.schedule_migration import migrate_legacy_schedules
from conveyor.queue.schedule_records import (
    Schedule,
    created_ms,
    read_schedule,
    save_schedule,
)
from conveyor.queue.schedule_spec import (
    MISFIRE_GRACE_MS,
    SCHEDULE_KEY,
    CatchUp,
    ScheduleSpec,
    TickPlan,
    latest_tick,
    next_tick,
    plan_tick,
    schedule_spec,
    tick_job_id,
)
from conveyor.queue.source import QueueSource
from conveyor.queue.tenants import admit
from conveyor.redis.job_schedulers import JobSchedulerStore, StoredScheduler

__all__ = [
    "MISFIRE_GRACE_MS",
    "SCHEDULE_KEY",
    "CatchUp",
    "Schedule",
    "ScheduleNotFoundError",
    "ScheduleSpec",
    "Schedules",
    "TickPlan",
    "latest_tick",
    "next_tick",
    "plan_tick",
    "save_schedule",
    "schedule_spec",
    "tick_job_id",
]


class ScheduleNotFoundError(QueueError):
    """No schedule with that key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"No schedule {key!r}; list them with `conveyor schedule list`.")
        self.key = key


class Schedules:
    """The schedules of one namespace, across its queues: create (idempotently, by key), list, remove."""

    def __init__(
        self,
        queue_for: Callable[[str], Queue],
        queue_names: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue_for = queue_for
        self.queue_names = list(queue_names)
        self._clock = clock
        self._migrated = False

    @classmethod
    def of(cls, source: QueueSource, clock: Callable[[], float] = time.time) -> Schedules:
        """The schedules of an app (or a tenant's view of it): `Schedules.of(app)`."""
        return cls(source.queue, source.queue_names, clock)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _store(self, queue: str) -> JobSchedulerStore:
        found = self.queue_for(queue)
        return JobSchedulerStore(found.client, found.keys)

    async def _migrate(self) -> None:
        """Move schedules stored the old way into job schedulers, once per object (cheap when there are none)."""
        if not self._migrated and self.queue_names:
            first = self.queue_for(self.queue_names[0])
            await migrate_legacy_schedules(first.client, first.conveyor_keys, self._clock)
            self._migrated = True

    async def add(self, spec: ScheduleSpec | None = None, /, **fields: Any) -> Schedule:
        """Create or update a schedule (a spec, or its fields as keywords). Saving the same spec again keeps its
        next tick; a changed spec starts over from now.

        Raises:
            InvalidOptionsError: a field is invalid. UnknownQueueError: the queue does not exist.
            InvalidPayloadError / PayloadTooLargeError: the payload cannot be stored.
            ScheduleNotReplicatedError: durable mode only: saved on the master, not confirmed by replicas in time.
        """
        spec = spec or schedule_spec(**fields)
        queue = self.queue_for(spec.queue)  # UnknownQueueError for a queue the app does not have
        await admit(queue, 0)  # a tenant's queue: its payload limit
        encode_payload({} if spec.data is None else spec.data, queue.max_payload_bytes)
        await self._migrate()
        for other in self.queue_names:
            if other != spec.queue and await self._store(other).get(spec.key) is not None:
                await self._store(other).remove(spec.key)  # a key names one schedule in the namespace
        stored = await self._store(spec.queue).get(spec.key)
        if stored is not None:
            current = read_schedule(stored, spec.queue)
            if current.spec == spec and current.defaults == queue.defaults:
                return current
        await save_schedule(queue, spec, queue.defaults, created_ms(stored, self._now_ms()), self._now_ms())
        return await self.get(spec.key)

    async def _find(self, key: str) -> tuple[str, StoredScheduler] | None:
        for name in self.queue_names:
            stored = await self._store(name).get(key)
            if stored is not None:
                return name, stored
        return None

    async def get(self, key: str) -> Schedule:
        """One schedule, or `ScheduleNotFoundError`."""
        await self._migrate()
        found = await self._find(key)
        if found is None:
            raise ScheduleNotFoundError(key)
        return read_schedule(found[1], found[0])

    async def all(self) -> list[Schedule]:
        """Every schedule of every queue, by key (those made in Node included)."""
        await self._migrate()
        found = [read_schedule(stored, name) for name in self.queue_names for stored in await self._store(name).all()]
        return sorted(found, key=lambda schedule: (schedule.key, schedule.spec.queue))

    async def remove(self, key: str) -> bool:
        """Delete a schedule and its next run's pending job; False when there was none. Jobs already running or
        finished stay."""
        await self._migrate()
        removed = False
        for name in self.queue_names:
            removed = await self._store(name).remove(key) or removed
        return removed
