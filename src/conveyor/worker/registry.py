"""The live worker list: each worker process beats a heartbeat into Redis; a dead one expires by itself.

Liveness is a Redis key TTL, not a comparison of wall clocks across hosts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from conveyor.redis.keys import ConveyorKeys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker process as it last reported itself."""

    id: str
    name: str
    host: str
    pid: int
    queues: dict[str, int]  # queue -> concurrency
    active: dict[str, int]  # queue -> running jobs
    processed: int
    started_at: datetime
    last_beat: datetime

    def to_fields(self) -> dict[str, str]:
        """The hash stored in Redis."""
        return {
            "name": self.name,
            "host": self.host,
            "pid": str(self.pid),
            "queues": json.dumps(self.queues),
            "active": json.dumps(self.active),
            "processed": str(self.processed),
            "started": self.started_at.isoformat(),
            "beat": self.last_beat.isoformat(),
        }

    @classmethod
    def from_fields(cls, worker_id: str, fields: dict[str, str]) -> WorkerInfo:
        """Parse the stored hash."""
        return cls(
            id=worker_id,
            name=fields.get("name", ""),
            host=fields.get("host", ""),
            pid=int(fields.get("pid", 0)),
            queues=json.loads(fields.get("queues", "{}")),
            active=json.loads(fields.get("active", "{}")),
            processed=int(fields.get("processed", 0)),
            started_at=datetime.fromisoformat(fields["started"]),
            last_beat=datetime.fromisoformat(fields["beat"]),
        )


class WorkerRegistry:
    """Writes this worker's heartbeat and reads everyone's."""

    def __init__(self, client: Redis, keys: ConveyorKeys, ttl_s: float) -> None:
        self.client = client
        self.keys = keys
        self.ttl_ms = int(ttl_s * 1000)

    async def beat(self, info: WorkerInfo) -> None:
        """Publish this worker's state; it disappears `ttl_s` after the last beat."""
        key = self.keys.worker(info.id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hset(key, mapping=cast("Mapping[Any, Any]", info.to_fields()))
        pipe.pexpire(key, self.ttl_ms)
        pipe.sadd(self.keys.workers, info.id)
        await pipe.execute()

    async def remove(self, worker_id: str) -> None:
        """Leave the list at once (clean shutdown)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keys.worker(worker_id))
        pipe.srem(self.keys.workers, worker_id)
        await pipe.execute()

    async def list(self) -> list[WorkerInfo]:
        """Every live worker; ids whose heartbeat expired are pruned."""
        ids = sorted(str(i) for i in await self.client.smembers(self.keys.workers))
        pipe = self.client.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(self.keys.worker(worker_id))
        rows: list[dict[str, Any]] = await pipe.execute()
        dead = [worker_id for worker_id, row in zip(ids, rows, strict=True) if not row]
        if dead:
            await self.client.srem(self.keys.workers, *dead)
        return [WorkerInfo.from_fields(i, row) for i, row in zip(ids, rows, strict=True) if row]


def now_utc(clock: Callable[[], float]) -> datetime:
    """The clock's time as an aware datetime."""
    return datetime.fromtimestamp(clock(), UTC)
