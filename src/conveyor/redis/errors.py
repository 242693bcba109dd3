"""Errors of the Redis layer: an unreachable server, a server too old, an embedded server that won't run."""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.errors import ConveyorError

CONNECTION_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a call raises when it could not reach Redis (or the connection broke): retry, reconnect, or report."""


class RedisUnavailableError(ConveyorError):
    """Redis did not answer; the message names the target (password masked) and what to check."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach Redis at {target}: {reason.rstrip('. ')}. Check that the server is running and "
            "that REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD/REDIS_DB, or REDIS_SENTINELS) points at "
            "it with the right password."
        )
        self.target = target
        self.reason = reason


class RedisVersionError(ConveyorError):
    """The server is older than the oldest Redis that BullMQ's scripts run on."""

    def __init__(self, version: str, minimum: str) -> None:
        super().__init__(
            f"Redis {version} is too old: Conveyor needs Redis >= {minimum}. "
            "Upgrade, or unset REDIS_URL to use the embedded server."
        )
        self.version = version
        self.minimum = minimum


class EmbeddedRedisError(ConveyorError):
    """The embedded redis-server could not be found, started, or reached; the message says what to do."""
