"""Writes that count as done only once replicas hold them: a write followed by `WAIT n timeout` on the same
connection (opt-in: `CONVEYOR_REDIS_WAIT_REPLICAS`, `CONVEYOR_REDIS_WAIT_TIMEOUT_MS`).

Redis replicates asynchronously: a master that dies a moment after acknowledging a write may take it along, and
Sentinel promotes a replica that never saw it. `WAIT` blocks until `n` replicas have acknowledged every write the
connection made before it, or the timeout passes; it returns how many did. It only covers writes made on the same
connection, so the write and the WAIT go out together in one pipeline (`ReplicatedPipeline`).

The queue and the worker decide when to wait and what a shortfall means (a typed error for a producer, a warning
for a worker's completion); this module only executes and reports (`NotReplicatedError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from conveyor.config.settings import Settings
from conveyor.errors import ConveyorError


@dataclass(frozen=True)
class ReplicaWait:
    """How a write is confirmed: `replicas` replicas must acknowledge it within `timeout_ms`."""

    replicas: int
    timeout_ms: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplicaWait | None:
        """The configured wait, or None when `CONVEYOR_REDIS_WAIT_REPLICAS` is 0 (the default: no WAIT)."""
        if settings.conveyor_redis_wait_replicas <= 0:
            return None
        return cls(settings.conveyor_redis_wait_replicas, settings.conveyor_redis_wait_timeout_ms)

    def describe(self) -> str:
        """`1 replica within 500 ms`, for messages."""
        plural = "" if self.replicas == 1 else "s"
        return f"{self.replicas} replica{plural} within {self.timeout_ms} ms"


class NotReplicatedError(ConveyorError):
    """The master made the writes, but fewer replicas than asked acknowledged them in time: they stand on the
    master and would be lost if it failed before a replica copied them. `results` holds the writes' replies."""

    def __init__(self, results: list[Any], acknowledged: int, wait: ReplicaWait) -> None:
        super().__init__(
            f"Redis wrote it on the master, but only {acknowledged} of {wait.describe()} acknowledged it "
            "(CONVEYOR_REDIS_WAIT_REPLICAS, CONVEYOR_REDIS_WAIT_TIMEOUT_MS). Check the replicas (INFO replication)."
        )
        self.results = results
        self.acknowledged = acknowledged
        self.wait = wait


class ReplicatedPipeline:
    """Commands queued on `pipe` are sent on one connection, followed by WAIT on that same connection.

    With `atomic`, they run inside MULTI/EXEC (what `client.pipeline(transaction=True)` gives) and the WAIT comes
    after the EXEC: a WAIT inside MULTI would not block. Replies are then the raw ones (redis-py's reply parsers
    would read each command's `QUEUED`), which script calls and the counts of HSET/ZADD/PUBLISH are anyway.
    """

    def __init__(self, client: Redis, wait: ReplicaWait, *, atomic: bool = False) -> None:
        self.wait = wait
        self.atomic = atomic
        self.pipe: Pipeline = client.pipeline(transaction=False)
        if atomic:
            self.pipe.response_callbacks = {}
            self.pipe.execute_command("MULTI")

    async def execute(self, *, raise_on_error: bool = True) -> list[Any]:
        """Run the queued commands and the WAIT; returns the commands' replies.

        Raises:
            NotReplicatedError: fewer replicas acknowledged than asked; its `results` are the replies.
            redis.exceptions.RedisError: a command failed (with `raise_on_error`; always when `atomic`), or the
                connection did, as for any pipeline.
        """
        if self.atomic:
            self.pipe.execute_command("EXEC")
        self.pipe.execute_command("WAIT", self.wait.replicas, self.wait.timeout_ms)
        replies = await self.pipe.execute(raise_on_error=raise_on_error or self.atomic)
        acknowledged = replies[-1]
        results = list(replies[-2] or []) if self.atomic else list(replies[:-1])
        if self.atomic:
            for result in results:
                if isinstance(result, Exception):
                    raise result
        if not isinstance(acknowledged, int) or acknowledged < self.wait.replicas:
            raise NotReplicatedError(results, acknowledged if isinstance(acknowledged, int) else 0, self.wait)
        return results
