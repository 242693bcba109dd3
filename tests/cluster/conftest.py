"""Fixtures for the Redis Cluster tests: one 3-primary, 3-replica cluster for the session, emptied before each
test, and apps connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conveyor import Conveyor, load_settings
from tests.cluster.servers import TestCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestCluster]:
    """3 primaries + 3 replicas for the whole session (tests that kill nodes start their own)."""
    cluster = TestCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster_nodes(redis_cluster: TestCluster) -> str:
    """REDIS_CLUSTER_NODES of the session cluster, emptied so each test starts from nothing."""
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster.startup_nodes


@pytest.fixture
async def cluster_app(cluster_nodes: str) -> AsyncIterator[Conveyor]:
    """A Conveyor connected to the session cluster, with short shutdown grace."""
    conveyor = Conveyor(load_settings(redis_cluster_nodes=cluster_nodes, conveyor_shutdown_grace_s=2))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()
