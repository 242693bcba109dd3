"""Errors of the Redis layer: an unreachable server, a full one, a server too old, an embedded server that won't
run. `typed_error` is the one place where redis-py's errors become these."""

from __future__ import annotations

import re

from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    RedisClusterUnreachableError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.errors import ConveyorError

CLUSTER_FAILURES = (ClusterDownError, TryAgainError, SlotNotCoveredError, RedisClusterUnreachableError)
"""What a Redis Cluster answers while a primary fails over or a slot moves (CLUSTERDOWN, TRYAGAIN, a slot no node
serves yet, no node reachable): passing, like an outage."""

CONNECTION_FAILURES = (RedisConnectionError, RedisTimeoutError, OSError, OutOfMemoryError, *CLUSTER_FAILURES)
"""What a call raises when Redis could not serve it: unreachable, the connection broke, out of memory (an OOM
refusal wrote nothing and passes when memory is freed, like an outage), or a cluster failing over: retry,
reconnect, or report."""


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


class RedisOutOfMemoryError(ConveyorError):
    """Redis refused a write: its memory is at `maxmemory` and its policy (`noeviction`) frees nothing."""

    def __init__(self, target: str, outcome: str) -> None:
        super().__init__(
            f"Redis at {target} is out of memory (used memory > maxmemory) and refused the write; {outcome}. "
            "Raise maxmemory (CONFIG SET maxmemory, or redis.conf), or drain queues (let workers run, clean "
            "completed and failed jobs, empty the dead-letter queue), then try again."
        )
        self.target = target
        self.outcome = outcome


def is_out_of_memory(error: BaseException) -> bool:
    """True for Redis' `OOM command not allowed ...` reply, however it came (a command, a pipeline, a script
    call on the lane, which reports it as a plain `ResponseError`)."""
    return isinstance(error, OutOfMemoryError) or (isinstance(error, ResponseError) and str(error).startswith("OOM "))


def typed_error(error: BaseException, target: str, outcome: str) -> ConveyorError | None:
    """The Conveyor error that reports a redis-py error of a call to `target` (`outcome` says what was done:
    "nothing was written"), or None when the error is not one of Redis' failures."""
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, *CLUSTER_FAILURES)):
        return RedisUnavailableError(target, f"{error} ({outcome})")
    if is_out_of_memory(error):
        done = _commands_done(error)
        partly = f"the first {done} of the batch were written, and later ones may have been (memory frees up as a "
        partly += "batch is read): look before adding them again"
        return RedisOutOfMemoryError(target, partly if done else outcome)
    return None


def _commands_done(error: BaseException) -> int:
    """How many commands of a pipeline ran before the one that failed (redis-py names it `Command # n`)."""
    found = re.match(r"Command # (\d+) ", str(error))
    return int(found.group(1)) - 1 if found else 0


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
