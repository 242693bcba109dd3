"""The scheduler duty of a worker: on start, move schedules stored the old way into BullMQ job schedulers.

Runs need no leader and no timer: each run of a schedule is a delayed job (`repeat:<key>:<tick>`) that the queue
promotes on its tick like any delayed job, and the worker that takes it adds the next run
(`conveyor.worker.schedule_runs`), as Node BullMQ workers do. So every tick runs once whichever workers, of
either runtime, serve the queue, and a tick is as punctual as a delayed job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.queue.queue import Queue
from conveyor.queue.schedule_migration import migrate_legacy_schedules
from conveyor.redis.connection import decoding
from conveyor.redis.keys import ConveyorKeys

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError)
RETRY_S = 1.0


class Scheduler:
    """Migrates the legacy schedules of the namespace of a worker's queues, then idles until shutdown."""

    def __init__(self, client: Redis, queues: Sequence[Queue], *, clock: Callable[[], float] = time.time) -> None:
        self.client = queues[0].client if queues else decoding(client)
        self.keys = queues[0].conveyor_keys if queues else ConveyorKeys("bull")  # tagged alike on a cluster
        self.migrated = 0
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Migrate (retrying while Redis is unavailable) until done or `stop` is set."""
        while not stop.is_set():
            try:
                self.migrated = await migrate_legacy_schedules(self.client, self.keys, self._clock)
                return
            except REDIS_ERRORS as exc:
                log.warning("scheduler: Redis unavailable (%s); retrying the schedule migration", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), RETRY_S)
