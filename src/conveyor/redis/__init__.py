"""The Redis layer: connections, the embedded server, the key schema, script access."""

# -- connections and the embedded server ------------------------------------------------------------
from conveyor.redis.connection import (
    RedisTarget,
    ServerHealth,
    check_server,
    ping_or_raise,
    resolve_target,
)
from conveyor.redis.discovery import AmbiguousServerError, EmbeddedMode, NoRunningServerError
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import (
    EmbeddedRedisError,
    RedisOutOfMemoryError,
    RedisUnavailableError,
    RedisVersionError,
)

__all__ = [
    "AmbiguousServerError",
    "EmbeddedMode",
    "EmbeddedRedis",
    "EmbeddedRedisError",
    "NoRunningServerError",
    "RedisOutOfMemoryError",
    "RedisTarget",
    "RedisUnavailableError",
    "RedisVersionError",
    "ServerHealth",
    "check_server",
    "ping_or_raise",
    "resolve_target",
]
