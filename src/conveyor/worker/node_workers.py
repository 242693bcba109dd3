"""Node BullMQ workers in Conveyor's worker list, found the way BullMQ's `Queue.getWorkers()` finds them.

A Node worker has no heartbeat record: it is a connection named `<prefix>:<base64(queue)>[:w:<name>]` (see
`conveyor.redis.client_names`). Conveyor's own workers name their fetch connections the same way with the name
marked `conveyor@…`; those are left out (they are listed from the registry, with their full record).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from redis.asyncio import Redis

from conveyor.redis.client_names import BullmqWorkerConnection, bullmq_worker_connections, is_conveyor_worker
from conveyor.worker.registry import WorkerInfo, now_utc

NODE_RUNTIME = "bullmq"


async def node_workers(client: Redis, prefix: str, clock: Callable[[], float]) -> list[WorkerInfo]:
    """One entry per Node BullMQ worker connection under `prefix` (a Node worker serves one queue), marked
    `runtime="bullmq"`. Concurrency, active jobs and processed counts are not published by Node: shown as 0."""
    connections = await bullmq_worker_connections(client, prefix)
    return [_info(c, clock) for c in connections if not is_conveyor_worker(c.worker_name)]


def _info(connection: BullmqWorkerConnection, clock: Callable[[], float]) -> WorkerInfo:
    now = now_utc(clock)
    host, _, _ = connection.addr.rpartition(":")
    return WorkerInfo(
        id=f"bullmq:{connection.client_id}",
        name=connection.worker_name or "(unnamed Node worker)",
        host=host or connection.addr,
        pid=0,
        queues={connection.queue: 0},
        active={connection.queue: 0},
        processed=0,
        started_at=now - timedelta(seconds=connection.age_s),
        last_beat=now - timedelta(seconds=connection.idle_s),
        runtime=NODE_RUNTIME,
    )
