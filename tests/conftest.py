"""Shared fixtures. Tests run against real Redis servers, started by Conveyor's own `EmbeddedRedis`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.redis.connection import RedisTarget
from conveyor.redis.embedded import EmbeddedRedis, Transport
from conveyor.redis.registry import STATE_DIR_ENV_VAR


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes several seconds on purpose (e.g. a long blocking read)")
    # Embedded servers started by tests register in a registry of the test run, never in the developer's own
    # (which would make their `conveyor` commands see test servers, and the tests see theirs).
    os.environ[STATE_DIR_ENV_VAR] = tempfile.mkdtemp(prefix="conveyor-test-state-")


# -- Redis ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded Redis for the whole session, on a loopback TCP port (so Node tools can reach it too)."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), transport="tcp")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session server's URL, emptied (FLUSHALL) so each test starts from an empty Redis."""
    client = RedisTarget(url=redis_server.url).sync_client()
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


OwnRedisFactory = Callable[..., EmbeddedRedis]


@pytest.fixture
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnRedisFactory]:
    """A factory of private, started embedded servers, for tests that stop, kill or restart them.

    `own_redis(transport="tcp", data_dir=path)` returns a started `EmbeddedRedis`; every server it made is
    stopped after the test, whatever state the test left it in.
    """
    servers: list[EmbeddedRedis] = []

    def make(*, transport: Transport = "unix", data_dir: Path | None = None) -> EmbeddedRedis:
        server = EmbeddedRedis(data_dir or tmp_path_factory.mktemp("own-redis"), transport=transport)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()
