"""Moving schedules stored the old way (`<prefix>:conveyor:schedules` hash + `:next` zset) into BullMQ job
schedulers, on the first start of a worker or the first schedule command.

Safe with several processes racing: one holds a short lock while it migrates, the others wait for it to finish.
Idempotent and resumable: a record is deleted only after its job scheduler exists, and a scheduler that already
exists (a crash after writing it, or a key re-created meanwhile) is kept as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import cast

from pydantic import ValidationError
from redis.asyncio import Redis

from conveyor.config import QueueSettings
from conveyor.errors import ConveyorError
from conveyor.queue.queue import Queue
from conveyor.queue.schedule_records import save_schedule
from conveyor.queue.schedule_spec import ScheduleSpec
from conveyor.redis.job_schedulers import JobSchedulerStore
from conveyor.redis.keys import ConveyorKeys

log = logging.getLogger(__name__)

LOCK_MS = 30_000
WAIT_FOR_OTHER_S = 10.0

# KEYS: lock. ARGV: token. Deletes the lock only if this token holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


async def migrate_legacy_schedules(client: Redis, keys: ConveyorKeys, clock: Callable[[], float] = time.time) -> int:
    """Migrate every legacy schedule of the namespace; returns how many this call wrote (0 when another process
    did it, or there were none)."""
    if not await client.exists(keys.schedules, keys.schedule_ticks):
        return 0
    token = uuid.uuid4().hex
    waited = 0.0
    while not await client.set(keys.schedule_migration_lock, token, nx=True, px=LOCK_MS):
        if waited >= WAIT_FOR_OTHER_S:
            log.warning("schedules: another process is still migrating legacy schedules; going on without them")
            return 0
        await asyncio.sleep(0.1)
        waited += 0.1
    try:
        return await _migrate_all(client, keys, clock)
    finally:
        await client.eval(_RELEASE, 1, keys.schedule_migration_lock, token)


async def _migrate_all(client: Redis, keys: ConveyorKeys, clock: Callable[[], float]) -> int:
    records = cast("dict[str, str]", await client.hgetall(keys.schedules))
    written = 0
    for key, raw in records.items():
        try:
            written += await _migrate_one(client, keys.prefix, raw, int(clock() * 1000))
        except (ValueError, KeyError, ValidationError, ConveyorError) as exc:
            log.error("schedules: legacy schedule %r could not be migrated (%s); it is left in place", key, exc)
            continue
        await client.hdel(keys.schedules, key)
    await client.delete(keys.schedule_ticks)  # the ticks of migrated schedules (job schedulers keep their own)
    if written:
        log.info("schedules: migrated %d legacy schedule(s) to BullMQ job schedulers", written)
    return written


async def _migrate_one(client: Redis, prefix: str, raw: str, now_ms: int) -> int:
    record = json.loads(raw)
    spec = ScheduleSpec.model_validate(record["spec"])
    defaults = QueueSettings.model_validate(record.get("defaults") or {})
    queue = Queue(client, spec.queue, prefix=prefix, defaults=defaults, max_payload_bytes=1 << 62)
    if await JobSchedulerStore(queue.client, queue.keys).get(spec.key) is not None:
        return 0  # already migrated (or made again since): keep it
    await save_schedule(queue, spec, defaults, int(record.get("created") or now_ms), now_ms)
    return 1
