"""Fixtures for the Redis Cluster tests: one 3-primary, 3-replica cluster for the session, emptied before each
test, and apps connected to it.

`app` stands in for the `app` fixture of the single-server suites that `tests/cluster/test_suites.py` runs again
on the cluster: it is connected to the cluster and carries the handlers the suite's own fixture registers.
`redis_url` skips a test: one that talks to a single server by URL is not a cluster test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from conveyor import Conveyor, load_settings
from conveyor.indexer import IndexerSettings
from conveyor.indexer import register as register_indexer
from tests.advanced.conftest import register_handlers, webhook  # noqa: F401 (the DLQ alert suite's receiver)
from tests.advanced.test_tenants import tenants  # noqa: F401 (the tenant suite's fixture)
from tests.api.conftest import api, start_api  # noqa: F401 (the API suite's fixtures, serving `api_app`)
from tests.api.worker_app import register_handlers as register_api_handlers
from tests.cluster.servers import TestCluster
from tests.indexer.conftest import index_path, repo  # noqa: F401 (the indexer suite's fixtures)
from tests.queue.conftest import Gate, gate, register_test_handlers  # noqa: F401 (the queue suite's fixture)


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


@pytest.fixture
async def app(request: pytest.FixtureRequest, cluster_nodes: str) -> AsyncIterator[Conveyor]:
    """The `app` of the suite the test comes from (its handlers, its shutdown grace), on the cluster."""
    suite = getattr(request.function, "__module__", "")
    grace = 1 if suite.startswith("tests.advanced.") else 2
    data_dir = request.getfixturevalue("tmp_path") / "data"
    conveyor = Conveyor(
        load_settings(redis_cluster_nodes=cluster_nodes, conveyor_shutdown_grace_s=grace, conveyor_data_dir=data_dir)
    )
    suite_gate: Gate | None = None
    if suite.startswith("tests.advanced."):
        register_handlers(conveyor)
    elif suite.startswith("tests.indexer."):
        register_indexer(conveyor, IndexerSettings(conveyor_index_path=request.getfixturevalue("index_path")))
    elif suite.startswith("tests.queue."):
        suite_gate = request.getfixturevalue("gate")
        register_test_handlers(conveyor, suite_gate)
    await conveyor.connect()
    yield conveyor
    if suite_gate is not None:
        suite_gate.open()
    await conveyor.close()


@pytest.fixture
async def api_app(cluster_nodes: str) -> AsyncIterator[Conveyor]:
    """The API suite's app (its handlers and payload model), on the cluster."""
    conveyor = register_api_handlers(
        Conveyor(load_settings(redis_cluster_nodes=cluster_nodes, conveyor_shutdown_grace_s=2))
    )
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


@pytest.fixture
def redis_url() -> str:
    pytest.skip("talks to a single Redis server by URL: not a cluster test")


@pytest.fixture
def stock_queue() -> None:
    pytest.skip("compares with the stock bullmq client on a single server: not a cluster test")


@pytest.fixture
def worker_processes() -> None:
    pytest.skip("worker processes of the single-server sample app (test_cluster_failover runs its own)")
