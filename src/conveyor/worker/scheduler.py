"""The scheduler: a worker duty that adds each schedule's job on its tick, on time, exactly once.

Every worker runs one, but only the holder of a Redis lock (`<prefix>:conveyor:schedules:lock`, renewed while
held) fires ticks; the others try to take the lock every `lock_ms / 2`, so a dead leader is replaced within
about `lock_ms`. The leader sleeps on an asyncio timer until the earliest tick (not a polling loop), and a
schedule added or changed meanwhile wakes it through a pub/sub message, so ticks fire within milliseconds.

Exactly one job per tick: the job id is `sched-<key>-<tick ms>`, so a tick added twice (two leaders for a
moment, a retry after an error) is one job; the schedule then moves to its next tick only if it still points
at the tick just handled. A tick found more than `MISFIRE_GRACE_MS` late was missed (no scheduler ran): it runs
once or is skipped, per schedule (`catch_up`). Jobs are added with the queue defaults saved with the schedule,
and without the app's producer hooks (the scheduler has no app).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.errors import ConveyorError
from conveyor.queue.queue import Queue
from conveyor.queue.schedules import MISFIRE_GRACE_MS, Schedule, Schedules, plan_tick, tick_job_id
from conveyor.redis.cluster import is_cluster, refresh_topology
from conveyor.redis.connection import decoding
from conveyor.redis.keys import ConveyorKeys
from conveyor.worker.dead_letters import rest

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError)
NO_LIMIT_BYTES = 1 << 62  # the payload size was checked when the schedule was saved

# KEYS: lock. ARGV: token, lock ms. Extends the lock if this token holds it, or takes it if it is free.
_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


class Scheduler:
    """Fires the ticks of the schedules in the namespace of a worker's queues (see the module docstring)."""

    def __init__(
        self,
        client: Redis,
        queues: Sequence[Queue],
        *,
        lock_ms: int = 5000,
        grace_ms: int = MISFIRE_GRACE_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        prefix = queues[0].keys.prefix if queues else "bull"
        self.client = queues[0].client if queues else decoding(client)
        self.keys = ConveyorKeys(prefix, is_cluster(self.client))
        self.schedules = Schedules(self.client, self.keys, clock=clock)
        self.lock_ms = lock_ms
        self.grace_ms = grace_ms
        self.token = uuid.uuid4().hex
        self.fired = 0
        self._clock = clock
        self._hold = self.client.register_script(_HOLD)
        self._wake = asyncio.Event()
        self._queues: dict[str, Queue] = {}

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    @property
    def renew_s(self) -> float:
        """How often the leader renews its lock (and a follower tries to take it)."""
        return self.lock_ms / 3000

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or stand by until `stop` is set."""
        listener: asyncio.Task[None] | None = None
        try:
            while not stop.is_set():
                wait = self.renew_s
                try:
                    if await self.hold_lock():
                        listener = listener or asyncio.create_task(self._listen(), name="scheduler-wake")
                        wait = min(wait, await self.fire_due())
                    elif listener is not None:
                        listener.cancel()
                        listener = None
                except REDIS_ERRORS as exc:
                    log.warning("scheduler: Redis unavailable (%s); retrying", exc)
                await rest(stop, self._wake, wait)
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
            with contextlib.suppress(*REDIS_ERRORS):
                await self.release_lock()

    async def _listen(self) -> None:
        """Wake the leader when a schedule changes (it may tick before the current sleep ends)."""
        while True:
            try:
                async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.keys.schedules_changed)
                    while True:
                        if await pubsub.get_message(timeout=1.0) is not None:
                            self._wake.set()
            except REDIS_ERRORS as exc:
                log.debug("scheduler wake-up listener reconnecting (%s)", exc)
                await asyncio.sleep(0.5)
                await refresh_topology(self.client)  # on a cluster, the channel's node may have failed over

    async def hold_lock(self) -> bool:
        """Take or renew the scheduler lock; True while this scheduler leads."""
        return bool(await self._hold(keys=[self.keys.scheduler_lock], args=[self.token, self.lock_ms]))

    async def release_lock(self) -> None:
        """Give the lock up (on shutdown) so another scheduler takes over at once."""
        if await self.client.get(self.keys.scheduler_lock) == self.token:
            await self.client.delete(self.keys.scheduler_lock)

    async def fire_due(self) -> float:
        """Fire every due tick; returns the seconds until the next one (at most one renewal period)."""
        while due := await self.schedules.due(self._now_ms()):
            for key, tick in due:
                await self._handle(key, tick)
        next_ms = await self.schedules.next_due_ms()
        if next_ms is None:
            return self.renew_s
        return min(self.renew_s, max(0.0, (next_ms - self._now_ms()) / 1000))

    async def _handle(self, key: str, tick: int) -> None:
        try:
            schedule = await self.schedules.get(key)
        except ConveyorError:
            await self.client.zrem(self.keys.schedule_ticks, key)  # its record is gone: drop the tick
            return
        plan = plan_tick(schedule.spec, tick, self._now_ms(), self.grace_ms)
        if plan.fire is not None:
            try:
                await self._add(schedule, plan.fire)
            except ConveyorError as exc:  # e.g. the queue's payload model changed: skip this tick, keep going
                log.error("schedule %s: could not add the job of tick %d: %s", key, plan.fire, exc)
        else:
            log.warning("schedule %s: skipped missed tick(s) up to %d (catch_up=skip)", key, tick)
        await self.schedules.advance(key, tick, plan.next)

    async def _add(self, schedule: Schedule, tick: int) -> None:
        spec = schedule.spec
        queue = self._queues.get(spec.queue)
        if queue is None or queue.defaults != schedule.defaults:
            queue = Queue(
                self.client,
                spec.queue,
                prefix=self.keys.prefix,
                defaults=schedule.defaults,
                max_payload_bytes=NO_LIMIT_BYTES,
            )
            self._queues[spec.queue] = queue
        options = spec.options.model_copy(update={"job_id": tick_job_id(spec.key, tick)})
        await queue.add(spec.type, spec.data, options)
        self.fired += 1
        lateness = self._now_ms() - tick
        log.debug("schedule %s: added job of tick %d (%d ms after the tick)", spec.key, tick, lateness)
