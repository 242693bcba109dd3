"""The live worker list: each worker process beats a heartbeat into Redis; a dead one expires by itself.

Liveness is a Redis key TTL, not a comparison of wall clocks across hosts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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
    job_types: dict[str, list[str]] = field(default_factory=dict)  # queue -> the job types it has handlers for
    runtime: str = "conveyor"  # or "bullmq": a Node worker, seen by its connection (`conveyor.worker.node_workers`)

    def to_json(self) -> str:
        """The record stored in Redis."""
        return json.dumps({
            "name": self.name, "host": self.host, "pid": self.pid, "queues": self.queues, "active": self.active,
            "processed": self.processed, "started": self.started_at.isoformat(), "beat": self.last_beat.isoformat(),
            "types": self.job_types,
        })  # fmt: skip

    @classmethod
    def from_json(cls, worker_id: str, raw: str) -> WorkerInfo:
        """Parse the stored record."""
        fields: dict[str, Any] = json.loads(raw)
        return cls(
            id=worker_id, name=fields["name"], host=fields["host"], pid=int(fields["pid"]),
            queues=fields["queues"], active=fields["active"], processed=int(fields["processed"]),
            started_at=datetime.fromisoformat(fields["started"]), last_beat=datetime.fromisoformat(fields["beat"]),
            job_types=fields.get("types") or {},  # a worker of an older version advertises none
        )  # fmt: skip


class WorkerRegistry:
    """Writes this worker's heartbeat and reads everyone's."""

    def __init__(self, client: Redis, keys: ConveyorKeys, ttl_s: float) -> None:
        self.client = client
        self.keys = keys
        self.ttl_ms = int(ttl_s * 1000)
        self._beats = 0

    async def beat(self, info: WorkerInfo) -> None:
        """Publish this worker's state; it disappears `ttl_s` after the last beat. One command per beat (an idle
        worker should cost Redis next to nothing); the id joins the index on the first beat and every tenth."""
        await self.client.set(self.keys.worker(info.id), info.to_json(), px=self.ttl_ms)
        if self._beats % 10 == 0:
            await self.client.sadd(self.keys.workers, info.id)
        self._beats += 1

    async def remove(self, worker_id: str) -> None:
        """Leave the list at once (clean shutdown)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self.keys.worker(worker_id))
        pipe.srem(self.keys.workers, worker_id)
        await pipe.execute()

    async def list(self) -> list[WorkerInfo]:
        """Every live worker; ids whose heartbeat expired are pruned."""
        ids = sorted(str(i) for i in await self.client.smembers(self.keys.workers))
        if not ids:
            return []
        rows = await self.client.mget([self.keys.worker(worker_id) for worker_id in ids])
        dead = [worker_id for worker_id, row in zip(ids, rows, strict=True) if not row]
        if dead:
            await self.client.srem(self.keys.workers, *dead)
        return [WorkerInfo.from_json(i, str(row)) for i, row in zip(ids, rows, strict=True) if row]


def advertised_types(workers: Iterable[WorkerInfo], besides: str | None = None) -> dict[str, set[str]]:
    """Queue -> the job types some live worker (other than the one with id `besides`) has handlers for."""
    types: dict[str, set[str]] = {}
    for worker in workers:
        if worker.id != besides:
            for queue, names in worker.job_types.items():
                types.setdefault(queue, set()).update(names)
    return types


def now_utc(clock: Callable[[], float]) -> datetime:
    """The clock's time as an aware datetime."""
    return datetime.fromtimestamp(clock(), UTC)
