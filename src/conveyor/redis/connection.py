"""How Conveyor reaches Redis: where the server is (`RedisTarget`), the clients it hands out, and the
checks it runs on a server before trusting it with jobs (`check_server`, `ping_or_raise`).

Every client has `decode_responses=True`. The bullmq Python port reads job hashes expecting `str`; given a
bytes client its handlers see empty job data, so Conveyor never hands out such a client. Bytes that are not
UTF-8 decode with `surrogateescape` (see `conveyor.redis.packing`): one malformed job hash never breaks a
connection.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

# Submodule imports only: ruff would file a bare `import redis` as first-party, because of tests/redis/.
from redis.asyncio.client import Redis
from redis.asyncio.connection import Connection as AsyncConnection
from redis.asyncio.connection import UnixDomainSocketConnection as AsyncUnixDomainSocketConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.client import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.utils import HIREDIS_AVAILABLE

from conveyor.config.errors import ConfigError
from conveyor.config.settings import Settings
from conveyor.redis.discovery import EmbeddedMode, find_embedded
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import CONNECTION_FAILURES, RedisUnavailableError, RedisVersionError, typed_error
from conveyor.redis.packing import ENCODING_ERRORS, pack_command
from conveyor.redis.registry import ServerRegistry
from conveyor.redis.server_binary import MIN_REDIS_VERSION, is_supported_version, parse_redis_version

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

_CONNECT_TIMEOUT_S = 5.0
# A command that takes longer than this is treated as a dead connection (then retried, see _RETRIES).
_COMMAND_TIMEOUT_S = 10.0
_HEALTH_CHECK_INTERVAL_S = 30
# Reconnect 3 times, 0.2 s + 0.4 s + 0.8 s apart: a worker rides out a Redis restart of about a second
# (its fetch loop retries beyond that), while an enqueue against a dead server fails within seconds.
_RETRIES = 3
_BACKOFF_BASE_S = 0.1
_BACKOFF_CAP_S = 1.0


@dataclass(frozen=True, repr=False)
class RedisTarget:
    """Where Redis is and how to log in: a URL, a host and port, or a set of Sentinels and a master name.

    Exactly one of `url`, `host` or `sentinels` is set. `password` applies to the Redis server (for a URL,
    only if the URL carries none); `sentinel_password` to the Sentinels themselves, which often have none.
    """

    url: str | None = None
    host: str | None = None
    port: int = 6379
    password: str | None = None
    db: int = 0
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_master: str = "mymaster"
    sentinel_password: str | None = None

    def __post_init__(self) -> None:
        modes = sum((self.url is not None, self.host is not None, bool(self.sentinels)))
        if modes != 1:
            raise ConfigError(
                "A Redis target needs exactly one of a URL (REDIS_URL), a host (REDIS_HOST) "
                "or Sentinels (REDIS_SENTINELS)."
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> RedisTarget | None:
        """Build the target from settings: REDIS_URL wins, then REDIS_HOST/PORT/PASSWORD/DB, then
        REDIS_SENTINELS (+ REDIS_SENTINEL_MASTER, REDIS_PASSWORD, REDIS_DB). None when none is set.

        Raises:
            ConfigError: REDIS_SENTINELS is not a `host:port,host:port` list.
        """
        if settings.redis_url:
            return cls(url=settings.redis_url, password=settings.redis_password)
        if settings.redis_host:
            return cls(
                host=settings.redis_host,
                port=settings.redis_port,
                password=settings.redis_password,
                db=settings.redis_db,
            )
        if settings.redis_sentinels:
            return cls(
                sentinels=parse_sentinels(settings.redis_sentinels),
                sentinel_master=settings.redis_sentinel_master,
                password=settings.redis_password,
                db=settings.redis_db,
            )
        return None

    def describe(self) -> str:
        """The target for messages and logs, passwords masked."""
        if self.url is not None:
            return mask_url(self.url)
        if self.host is not None:
            return f"redis://{self.host}:{self.port}/{self.db}"
        sentinels = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"sentinel master {self.sentinel_master!r} via {sentinels} (db {self.db})"

    def __repr__(self) -> str:
        return f"RedisTarget({self.describe()})"

    def client(self, *, blocking: bool = False, name: str | None = None) -> Redis:
        """An asyncio client for this target; the caller closes it (`await client.aclose()`).

        Args:
            blocking: True for a client that issues blocking commands (BZPOPMIN with a timeout): one
                connection and no socket timeout, so Redis, not the socket, ends the wait.
            name: the CLIENT SETNAME name, shown by CLIENT LIST (e.g. `conveyor:worker:<id>`).
        """
        options = self._options(blocking=blocking, name=name, retry=_async_retry())
        if self.sentinels:
            client = Redis(connection_pool=self._async_sentinel_pool(options), single_connection_client=blocking)
            client.auto_close_connection_pool = True  # the client owns its pool, as with master_for()
        elif self.url is not None:
            client = Redis.from_url(self.url, single_connection_client=blocking, **options)
        else:
            client = Redis(host=self.host or "localhost", port=self.port, single_connection_client=blocking, **options)
        _enforce(client.connection_pool.connection_kwargs, blocking=blocking)
        _pack_with_hiredis(client)
        return client

    def sync_client(self, *, name: str | None = None) -> SyncRedis:
        """A synchronous client for the CLI and test fixtures, with the non-blocking client's options."""
        options = self._options(blocking=False, name=name, retry=_sync_retry())
        if self.sentinels:
            client = SyncRedis(connection_pool=self._sync_sentinel_pool(options))
            client.auto_close_connection_pool = True
        elif self.url is not None:
            client = SyncRedis.from_url(self.url, **options)
        else:
            client = SyncRedis(host=self.host or "localhost", port=self.port, **options)
        _enforce(client.connection_pool.connection_kwargs, blocking=False)
        return client

    def _options(self, *, blocking: bool, name: str | None, retry: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "decode_responses": True,
            "encoding_errors": ENCODING_ERRORS,  # bytes that are not UTF-8 never break a connection (see packing)
            "socket_connect_timeout": _CONNECT_TIMEOUT_S,
            # Why no socket timeout on the blocking client: redis-py 8 gives every client a 5 s socket
            # timeout by default, which cuts a BZPOPMIN that waits longer; the stock bullmq worker then
            # reconnects and re-blocks, and its pickup latency degrades to seconds. Our blocking client has
            # no socket timeout and passes the block timeout to Redis instead, so Redis ends the wait. A
            # silently dead peer is still noticed: TCP keepalive (on by default) and the health check.
            "socket_timeout": None if blocking else _COMMAND_TIMEOUT_S,
            "health_check_interval": _HEALTH_CHECK_INTERVAL_S,
            "retry": retry,
            "client_name": name,
        }
        if self.password is not None:
            options["password"] = self.password  # a password in the URL overrides this one
        if self.url is None:
            options["db"] = self.db
        return options

    def _sentinel_options(self) -> dict[str, Any]:
        return {
            "socket_connect_timeout": _CONNECT_TIMEOUT_S,
            "socket_timeout": _CONNECT_TIMEOUT_S,
            "password": self.sentinel_password,
        }

    # redis-py's Sentinel classes are unannotated in some releases: pyproject's `untyped_calls_exclude` covers them.
    def _async_sentinel_pool(self, options: dict[str, Any]) -> AsyncSentinelConnectionPool:
        manager = AsyncSentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_options())
        return AsyncSentinelConnectionPool(
            self.sentinel_master, manager, is_master=True, connection_class=_AsyncSentinelMasterConnection, **options
        )

    def _sync_sentinel_pool(self, options: dict[str, Any]) -> SentinelConnectionPool:
        manager = Sentinel(list(self.sentinels), sentinel_kwargs=self._sentinel_options())
        return SentinelConnectionPool(
            self.sentinel_master, manager, is_master=True, connection_class=_SentinelMasterConnection, **options
        )


# Why these: redis-py's Sentinel connections ask Sentinel for the master only in `connect()`, which the pool calls
# on checkout. A connection that drops while in use reconnects from `send_packed_command` through
# `connect_check_health`, which skips that lookup and dials the address it had. A client that keeps its connection
# (the worker's blocking client, `single_connection_client`) then redials the old master forever: after a
# failover that is a replica again, and every command fails with READONLY. These ask Sentinel on every reconnect.


class _AsyncSentinelMasterConnection(AsyncSentinelManagedConnection):
    """A Sentinel-managed asyncio connection that looks the master up again whenever it reconnects."""

    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if not self.is_connected and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        await super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class _SentinelMasterConnection(SentinelManagedConnection):
    """A Sentinel-managed connection that looks the master up again whenever it reconnects."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock is None and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


@dataclass(frozen=True)
class ServerHealth:
    """What `check_server` learned: the version and eviction policy (None when the server would not say),
    whether Conveyor runs degraded on it, and the warnings it logged."""

    version: str | None
    eviction_policy: str | None
    degraded: bool
    warnings: tuple[str, ...]


async def check_server(client: Redis) -> ServerHealth:
    """Check that the server can hold Conveyor's jobs: Redis >= 6.2 and `maxmemory-policy noeviction`.

    A policy that evicts keys is logged as a loud warning and marks the result degraded. Values the server
    won't reveal (an ACL denying INFO and CONFIG, a managed service) become warnings, not errors.

    Raises:
        RedisVersionError: the server is older than 6.2.
        redis.exceptions.ConnectionError: the server is unreachable (see `ping_or_raise`).
    """
    warnings: list[str] = []
    version = await _server_version(client, warnings)
    if version is not None and is_supported_version(version) is False:
        raise RedisVersionError(version, ".".join(map(str, MIN_REDIS_VERSION[:2])))
    policy = await _eviction_policy(client, warnings)
    degraded = policy is not None and policy != "noeviction"
    if degraded:
        warnings.append(
            f"IMPORTANT: Redis maxmemory-policy is {policy!r}: when memory fills up, jobs can be silently "
            "evicted; set maxmemory-policy noeviction (CONFIG SET and redis.conf)."
        )
    for warning in warnings:
        logger.warning(warning, extra={"redis_version": version, "eviction_policy": policy})
    return ServerHealth(version=version, eviction_policy=policy, degraded=degraded, warnings=tuple(warnings))


async def ping_or_raise(client: Redis) -> None:
    """PING the server; a connection failure becomes `RedisUnavailableError` naming the target.

    Raises:
        RedisUnavailableError: the server did not answer (refused, timed out, wrong password); the message
            names the target with its password masked.
    """
    try:
        await client.ping()
    except CONNECTION_FAILURES as exc:
        raise RedisUnavailableError(describe_client(client), str(exc) or type(exc).__name__) from exc


def resolve_target(
    settings: Settings, mode: EmbeddedMode = EmbeddedMode.PROJECT
) -> tuple[RedisTarget, EmbeddedRedis | None]:
    """The configured target, or else an embedded server's, found (or started) as `mode` allows.

    See `conveyor.redis.discovery` for the search: an explicit data dir, the folders above the current one,
    the per-user registry of running servers (`CONVEYOR_STATE_DIR`).

    Returns:
        The target, and the embedded server when one is used (None for a configured Redis). Call its
        `stop()` on shutdown: it stops the server only if this process started it.

    Raises:
        NoRunningServerError / AmbiguousServerError: see `find_embedded`.
    """
    target = RedisTarget.from_settings(settings)
    if target is not None:
        return target, None
    server = find_embedded(
        settings.conveyor_data_dir,
        explicit="conveyor_data_dir" in settings.model_fields_set,
        mode=mode,
        registry=ServerRegistry(settings.conveyor_state_dir),
    )
    return RedisTarget(url=server.url), server


def parse_sentinels(text: str) -> tuple[tuple[str, int], ...]:
    """`"h1:26379,h2:26379"` → `(("h1", 26379), ("h2", 26379))`.

    Raises:
        ConfigError: an entry is not `host:port` with a numeric port.
    """
    sentinels = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"REDIS_SENTINELS: {entry!r} is not host:port (e.g. 10.0.0.5:26379).")
        sentinels.append((host.strip("[]"), int(port)))
    if not sentinels:
        raise ConfigError("REDIS_SENTINELS is empty; give host:port,host:port or unset it.")
    return tuple(sentinels)


def mask_url(url: str) -> str:
    """The URL with its password (in the user info or a `password=` query) replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"{userinfo}@{host}"
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def decoding(client: Redis) -> Redis:
    """`client` itself if it decodes responses, else a twin on the same server and pool settings that does.

    The bullmq Python port hands handlers empty job data when given a client without `decode_responses`;
    Conveyor accepts such a client from a caller and simply talks through a decoding twin instead.
    """
    pool = client.connection_pool
    if pool.connection_kwargs.get("decode_responses"):
        return client
    twin = type(pool)(
        connection_class=pool.connection_class,
        max_connections=pool.max_connections,
        **{**pool.connection_kwargs, "decode_responses": True, "encoding_errors": ENCODING_ERRORS},
    )
    decoded = Redis(connection_pool=twin)
    decoded.auto_close_connection_pool = True
    return decoded


def describe_client(client: Redis | SyncRedis) -> str:
    """Where a client connects, for messages: `redis://host:port/db`, `unix:///path?db=n` or a Sentinel
    master — never the password."""
    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    db = kwargs.get("db", 0)
    service = getattr(pool, "service_name", None)
    if service is not None:
        return f"sentinel master {service!r} (db {db})"
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={db}"
    scheme = "rediss" if "SSL" in getattr(pool, "connection_class", type(None)).__name__ else "redis"
    return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{db}"


def redis_call(
    outcome: str = "nothing was changed",
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Decorate a method of an object with a `client` (a queue, the flows): Redis' failures (unreachable,
    out of memory) become `RedisUnavailableError` / `RedisOutOfMemoryError` that name the server and say
    what was done (`outcome`); other errors pass unchanged."""

    def wrap(func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(func)
        async def call(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await func(*args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
                client = getattr(args[0], "client", None) if args else None
                target = describe_client(client) if isinstance(client, Redis | SyncRedis) else "Redis"
                error = typed_error(exc, target, outcome)
                if error is None:
                    raise
                raise error from exc

        return call

    return wrap


async def _server_version(client: Redis, warnings: list[str]) -> str | None:
    try:
        info = await client.info("server")
    except ResponseError as exc:
        warnings.append(
            f"Could not read the Redis version (INFO server: {exc}); Conveyor needs Redis >= 6.2, "
            "make sure the server is. Allow INFO for Conveyor's user to have this checked."
        )
        return None
    version = info.get("redis_version")
    if version is None or parse_redis_version(str(version)) is None:
        warnings.append(f"Could not parse the Redis version {version!r}; Conveyor needs Redis >= 6.2.")
        return None if version is None else str(version)
    return str(version)


async def read_eviction_policy(client: Redis) -> str | None:
    """The server's `maxmemory-policy` now (None when it won't say: an ACL, a managed service).

    Raises:
        redis.exceptions.ConnectionError: the server is unreachable.
    """
    return await _eviction_policy(client, [])


async def _eviction_policy(client: Redis, warnings: list[str]) -> str | None:
    errors: list[str] = []
    try:
        policy = (await client.info("memory")).get("maxmemory_policy")
        if policy is not None:
            return str(policy)
    except ResponseError as exc:
        errors.append(f"INFO memory: {exc}")
    try:
        config = await client.config_get("maxmemory-policy")
        if "maxmemory-policy" in config:
            return str(config["maxmemory-policy"])
    except ResponseError as exc:
        errors.append(f"CONFIG GET: {exc}")
    warnings.append(
        f"Could not read Redis maxmemory-policy ({'; '.join(errors) or 'not reported'}). Make sure it is "
        "noeviction: any other policy can silently evict jobs when memory fills up."
    )
    return None


def _hiredis_pack(args: tuple[Any, ...]) -> list[bytes]:
    # Like redis-py's packer, split a multi-word command name ("CLIENT INFO") into its words.
    if isinstance(args[0], str) and " " in args[0]:
        args = (*args[0].split(), *args[1:])
    return [pack_command(args)]


class _HiredisPackingConnection(AsyncConnection):
    """A TCP connection that packs commands with hiredis' C packer (same bytes on the wire)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)


class _HiredisPackingUnixConnection(AsyncUnixDomainSocketConnection):
    """A unix-socket connection that packs commands with hiredis' C packer."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return _hiredis_pack(args)


def _pack_with_hiredis(client: Redis) -> None:
    """redis-py's sync connections pack commands with hiredis when it is installed, its asyncio ones in Python.
    Every job costs a script call with a dozen arguments, so the worker's and producer's hot path uses the C
    packer too (TLS and Sentinel connections keep redis-py's own)."""
    pool = client.connection_pool
    swap = {AsyncConnection: _HiredisPackingConnection, AsyncUnixDomainSocketConnection: _HiredisPackingUnixConnection}
    if HIREDIS_AVAILABLE and pool.connection_class in swap:
        pool.connection_class = swap[pool.connection_class]


def _async_retry() -> AsyncRetry:
    return AsyncRetry(ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), _RETRIES)


def _sync_retry() -> Retry:
    return Retry(ExponentialBackoff(cap=_BACKOFF_CAP_S, base=_BACKOFF_BASE_S), _RETRIES)


def _enforce(connection_kwargs: dict[str, Any], *, blocking: bool) -> None:
    """Pin the options Conveyor depends on, even if a URL query (`?socket_timeout=5`) tried to change them.

    from_url() lets the URL's query override keyword arguments; these must not be overridden.
    """
    connection_kwargs["decode_responses"] = True
    connection_kwargs["encoding_errors"] = ENCODING_ERRORS
    if blocking:
        connection_kwargs["socket_timeout"] = None
