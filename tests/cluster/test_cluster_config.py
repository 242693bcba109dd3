"""Pointing Conveyor at a cluster: REDIS_CLUSTER_NODES parsed and checked at the edge, the target it makes."""

from __future__ import annotations

import pytest

from conveyor.config import ConfigError, load_settings
from conveyor.redis.cluster import parse_cluster_nodes
from conveyor.redis.connection import RedisTarget
from conveyor.redis.replication import ReplicaWait


def test_cluster_nodes_make_a_cluster_target() -> None:
    settings = load_settings(redis_cluster_nodes="10.0.0.1:7000, 10.0.0.2:7001", redis_password="pw")
    target = RedisTarget.from_settings(settings)
    assert target is not None
    assert target.is_cluster
    assert target.cluster_nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert target.password == "pw"
    assert settings.redis_configured
    assert "pw" not in repr(target)


@pytest.mark.parametrize("value", ["10.0.0.1", "10.0.0.1:port", ":7000", "10.0.0.1:70000", " , "])
def test_a_malformed_node_list_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_CLUSTER_NODES"):
        load_settings(redis_cluster_nodes=value)


def test_a_cluster_with_a_database_other_than_0_is_refused() -> None:
    with pytest.raises(ConfigError, match="only database 0"):
        RedisTarget(cluster_nodes=(("127.0.0.1", 7000),), db=2)


def test_ipv6_nodes_in_brackets_are_parsed() -> None:
    assert parse_cluster_nodes("[::1]:7000") == (("::1", 7000),)


def test_an_empty_node_list_counts_as_unset() -> None:
    assert load_settings(redis_cluster_nodes="").redis_cluster_nodes is None


def test_durable_mode_is_refused_on_a_cluster() -> None:
    settings = load_settings(redis_cluster_nodes="127.0.0.1:7000", conveyor_redis_wait_replicas=1)
    with pytest.raises(ConfigError, match="not available on a Redis Cluster"):
        ReplicaWait.from_settings(settings)
