"""Redis Cluster: the client Conveyor hands out for a cluster, and how the rest of the code tells it apart.

On a cluster the shared client is redis-py's `redis.asyncio.cluster.RedisCluster`. It routes each command (and
each script call, by its first key) to the primary owning the key's slot, follows MOVED/ASK redirections and
refreshes the slot map when a primary fails over. Conveyor's key schema puts every key of one queue under one
hash tag (`bull:{indexing}:wait`, see `conveyor.redis.keys`), so BullMQ's scripts and Conveyor's transactions
each stay within one slot, and different queues spread over the shards.

The client is typed as `redis.asyncio.Redis` where it is handed around: it speaks the same command API (commands,
scripts, pipelines, same-slot transactions with WATCH, pub/sub). What only a single-node client has — its
`connection_pool`, the fast lane, CLIENT ID/UNBLOCK on one connection — is reached only after `is_cluster`
says no.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import ClusterPipeline as AsyncClusterPipeline
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.client import Redis as SyncRedis
from redis.cluster import ClusterNode as SyncClusterNode
from redis.cluster import ClusterPipeline as SyncClusterPipeline
from redis.cluster import RedisCluster as SyncRedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, SlotNotCoveredError

from conveyor.config.errors import ConfigError

_REFRESH_FAILURES = (RedisError, RedisClusterException, OSError)


def parse_cluster_nodes(text: str) -> tuple[tuple[str, int], ...]:
    """`"10.0.0.1:7000,10.0.0.2:7000"` → `(("10.0.0.1", 7000), ("10.0.0.2", 7000))`: startup nodes of a cluster
    (any reachable node will do; the client discovers the rest).

    Raises:
        ConfigError: an entry is not `host:port` with a numeric port, or the list is empty.
    """
    nodes = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"REDIS_CLUSTER_NODES: {entry!r} is not host:port (e.g. 10.0.0.5:7000).")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise ConfigError("REDIS_CLUSTER_NODES is empty; give host:port,host:port of cluster nodes or unset it.")
    return tuple(nodes)


def async_cluster_client(nodes: tuple[tuple[str, int], ...], options: dict[str, Any]) -> Redis:
    """An asyncio `RedisCluster` over `nodes` with Conveyor's client options (see `RedisTarget._options`),
    typed as `Redis` (see the module docstring). The caller closes it (`await client.aclose()`)."""
    options = {key: value for key, value in options.items() if key not in ("db", "health_check_interval")}
    client = AsyncRedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        # A pool per node big enough for a worker's concurrent calls: an exhausted pool raises, never waits.
        max_connections=1000,
        # Mid-failover a node may report a slot map with a hole. Accept it: a command to the hole then raises
        # SlotNotCoveredError, a passing failure (CLUSTER_FAILURES), rather than every refresh failing outright.
        require_full_coverage=False,
        **options,
    )
    return cast(Redis, client)


def sync_cluster_client(nodes: tuple[tuple[str, int], ...], options: dict[str, Any]) -> SyncRedis:
    """A synchronous `RedisCluster` over `nodes` (for the CLI and test fixtures), typed as `redis.Redis`."""
    options = {key: value for key, value in options.items() if key not in ("db", "health_check_interval")}
    client = SyncRedisCluster(startup_nodes=[SyncClusterNode(host, port) for host, port in nodes], **options)
    return cast(SyncRedis, client)


def is_cluster(client: object) -> bool:
    """Whether `client` is a Redis Cluster client (asyncio or sync, or a pipeline of one)."""
    return isinstance(client, AsyncRedisCluster | SyncRedisCluster | AsyncClusterPipeline | SyncClusterPipeline)


async def refresh_topology(client: Redis) -> None:
    """Re-read which node serves which slot, on a cluster client (a no-op on any other).

    redis-py refreshes the slot map when a command fails, but a pub/sub connection that broke tells it nothing:
    a listener that resubscribes after a failover would keep dialling the dead primary. Listeners call this
    before they resubscribe. A failure to reach any node is left to the next attempt.
    """
    if isinstance(client, AsyncRedisCluster):
        with contextlib.suppress(*_REFRESH_FAILURES):
            await client.nodes_manager.initialize()


async def load_script_for(client: Redis, key: str, source: str, loaded: set[str]) -> None:
    """Make sure the primary serving `key`'s slot has the script `source` (SCRIPT LOAD there, once per node:
    `loaded` holds the names of the nodes that have it). For script calls queued in a cluster pipeline, which
    redis-py sends as EVALSHA without loading the script first. A failover moves the slot to a node with
    another name, which is then loaded too (Redis does not replicate its script cache)."""
    cluster = cast(AsyncRedisCluster, client)
    if not cluster.nodes_manager.slots_cache:
        await cluster.initialize()
    node = cluster.get_node_from_key(key)
    if node is None:
        raise SlotNotCoveredError(f"no node serves the slot of {key!r} (the cluster is failing over)")
    if node.name not in loaded:
        await cluster.execute_command("SCRIPT LOAD", source, target_nodes=node)
        loaded.add(node.name)


def connection_options(client: Redis) -> dict[str, Any]:
    """The options a cluster client opens its node connections with (password, timeouts, client name, …)."""
    return dict(cast(AsyncRedisCluster, client).nodes_manager.connection_kwargs)


def slot_address(client: Redis, key: str) -> Callable[[bool], Awaitable[tuple[str, int]]]:
    """A function giving the address of the primary serving `key`'s slot now, as the client's slot map says (read
    first if the client has not run a command yet, or again when called with `True`: a lane reconnecting after a
    failure, whose client may have sent nothing else that would have noticed a failover). It holds no reference to
    the client: lanes are kept in a weak map keyed by their client.

    Raises (when called):
        redis.exceptions.ConnectionError: the client is gone, or no node serves the slot (a failover is on).
    """
    ref = weakref.ref(cast(AsyncRedisCluster, client))

    async def address(refresh: bool) -> tuple[str, int]:
        cluster = ref()
        if cluster is not None and not cluster.nodes_manager.slots_cache:
            await cluster.initialize()
        elif cluster is not None and refresh:
            await refresh_topology(cast(Redis, cluster))
        node = cluster.get_node_from_key(key) if cluster is not None else None
        if node is None:
            raise RedisConnectionError(f"no cluster node known to serve the slot of {key!r}")
        return node.host, int(node.port)

    return address


REDIRECTIONS = ("MOVED ", "ASK ", "CLUSTERDOWN ", "TRYAGAIN ", "MASTERDOWN ", "READONLY ")
"""Replies of a cluster node that did not run a command because its slot is served elsewhere (or not served now)."""
