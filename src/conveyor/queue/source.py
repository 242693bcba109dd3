"""What the advanced features (dead letters, flows, schedules) need from an application: its queues.

`Conveyor` (and a tenant's view of it) satisfy `QueueSource` structurally, so the queue layer can serve them
without importing the app layer: `DeadLetters.of(app)`, `Flows.of(app)`, `Schedules.of(app)`.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.asyncio import Redis

from conveyor.queue.queue import Queue
from conveyor.redis.keys import ConveyorKeys


class QueueSource(Protocol):
    """An application's queues by name, and its payload check."""

    @property
    def queue_names(self) -> list[str]:
        """Every queue it has."""
        ...

    def queue(self, name: str) -> Queue:
        """The queue object of a queue name (raises `UnknownQueueError` for others)."""
        ...

    def validate_payload(self, queue: str, job_type: str, data: Any) -> Any:
        """The payload as it will be stored (checked against the handler's model when there is one)."""
        ...


def namespace(source: QueueSource) -> tuple[Redis, ConveyorKeys]:
    """The client and key schema of a source's namespace (a tenant's view has its own prefix)."""
    first = source.queue(source.queue_names[0])
    return first.client, first.conveyor_keys
