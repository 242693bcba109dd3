"""Targets, clients and server checks, against real embedded Redis servers (and a real Sentinel)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from redis.client import Redis as SyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from conveyor.config.errors import ConfigError
from conveyor.config.settings import load_settings
from conveyor.redis.connection import (
    RedisTarget,
    check_server,
    mask_url,
    parse_sentinels,
    ping_or_raise,
    resolve_target,
)
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import RedisUnavailableError, RedisVersionError
from conveyor.redis.server_binary import find_redis_server, is_supported_version

OwnRedisFactory = Callable[..., EmbeddedRedis]  # the `own_redis` fixture
REDIS_ENV = ("REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "REDIS_SENTINELS")


@pytest.fixture
def no_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REDIS_ENV:
        monkeypatch.delenv(name, raising=False)


# -- versions, URLs, settings (no server needed) ----------------------------------------------------


def test_version_error_says_what_to_do() -> None:
    message = str(RedisVersionError("6.0.9", "6.2"))

    assert "6.0.9 is too old" in message
    assert ">= 6.2" in message
    assert "Upgrade" in message


def test_mask_url_hides_passwords() -> None:
    assert mask_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert mask_url("unix://:s3cret@/run/redis.sock?db=0") == "unix://:***@/run/redis.sock?db=0"
    assert mask_url("rediss://host:6380/0?password=s3cret&db=1") == "rediss://host:6380/0?password=***&db=1"
    assert "s3cret" not in repr(RedisTarget(url="redis://:s3cret@host/0", password="other"))


@pytest.mark.usefixtures("no_redis_env")
def test_redis_url_wins_over_host_and_sentinels() -> None:
    settings = load_settings(_env_file=None, redis_url="redis://a:1/0", redis_host="b", redis_sentinels="c:2")

    target = RedisTarget.from_settings(settings)

    assert target is not None
    assert target.url == "redis://a:1/0"
    assert target.host is None


@pytest.mark.usefixtures("no_redis_env")
def test_no_target_when_nothing_is_configured() -> None:
    assert RedisTarget.from_settings(load_settings(_env_file=None)) is None


def test_sentinel_list_is_parsed_and_checked() -> None:
    assert parse_sentinels("10.0.0.1:26379, sentinel-2:26380") == (("10.0.0.1", 26379), ("sentinel-2", 26380))
    with pytest.raises(ConfigError, match="REDIS_SENTINELS"):
        parse_sentinels("10.0.0.1")


def test_target_needs_exactly_one_way_to_reach_redis() -> None:
    with pytest.raises(ConfigError):
        RedisTarget()
    with pytest.raises(ConfigError):
        RedisTarget(url="redis://h/0", host="h")


# -- clients ------------------------------------------------------------------------------------------


async def test_clients_always_decode_responses(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        await client.set("k", "v")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


async def test_client_from_host_port_password_settings_works(
    redis_server: EmbeddedRedis, redis_url: str, no_redis_env: None
) -> None:
    settings = load_settings(
        _env_file=None,
        redis_host="127.0.0.1",
        redis_port=redis_server.port,
        redis_password=redis_server.password,
        redis_db=3,
    )
    target = RedisTarget.from_settings(settings)
    assert target is not None
    assert target.host == "127.0.0.1"
    client = target.client(name="conveyor-test")
    try:
        await client.set("k", "v")
        info = await client.client_info()
        assert (info["db"], info["name"]) == (3, "conveyor-test")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


@pytest.mark.slow
async def test_blocking_client_waits_out_a_long_bzpopmin(redis_url: str) -> None:
    """The defect we must not have: a socket timeout shorter than the block cutting BZPOPMIN short."""
    client = RedisTarget(url=redis_url).client(blocking=True)
    try:
        started = time.monotonic()
        result = await client.bzpopmin("conveyor:test:marker", timeout=6.5)
        elapsed = time.monotonic() - started
    finally:
        await client.aclose()

    assert result is None
    assert 6.4 <= elapsed < 8.0


async def test_blocking_client_ignores_a_socket_timeout_in_the_url(redis_url: str) -> None:
    client = RedisTarget(url=f"{redis_url}?socket_timeout=0.5").client(blocking=True)
    try:
        result = await client.bzpopmin("conveyor:test:marker", timeout=1.5)
    finally:
        await client.aclose()

    assert result is None


async def test_blocking_client_wakes_as_soon_as_a_member_arrives(redis_url: str) -> None:
    target = RedisTarget(url=redis_url)
    blocking, producer = target.client(blocking=True), target.client()
    try:

        async def pop() -> object:
            return await blocking.bzpopmin("conveyor:test:marker", timeout=10)

        waiter = asyncio.create_task(pop())
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await producer.zadd("conveyor:test:marker", {"0": 0})
        result = await waiter
        assert time.monotonic() - started < 0.5
    finally:
        await blocking.aclose()
        await producer.aclose()

    assert result == ("conveyor:test:marker", "0", 0.0)


async def test_client_survives_a_server_restart(own_redis: OwnRedisFactory) -> None:
    server = own_redis(transport="tcp")
    client = RedisTarget(url=server.url).client()
    try:
        await client.set("k", "v")
        server.restart()
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


async def test_stopped_server_raises_unavailable_within_seconds(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    client = RedisTarget(url=server.url).client()
    try:
        await ping_or_raise(client)
        server.stop()
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError) as caught:
            await ping_or_raise(client)
        assert time.monotonic() - started < 10
    finally:
        await client.aclose()

    message = str(caught.value)
    assert str(server.socket_path) in message
    assert server.password not in message


async def test_wrong_password_raises_unavailable_without_leaking_it(redis_server: EmbeddedRedis) -> None:
    client = RedisTarget(host="127.0.0.1", port=redis_server.port or 0, password="wrong-secret").client()
    try:
        with pytest.raises(RedisUnavailableError, match=r"127\.0\.0\.1") as caught:
            await ping_or_raise(client)
    finally:
        await client.aclose()

    assert "wrong-secret" not in str(caught.value)


def test_sync_client_works(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).sync_client()
    try:
        client.set("k", "v")
        assert client.get("k") == "v"
    finally:
        client.close()


# -- server checks ------------------------------------------------------------------------------------


async def test_check_server_passes_on_the_embedded_server(redis_url: str) -> None:
    client = RedisTarget(url=redis_url).client()
    try:
        health = await check_server(client)
    finally:
        await client.aclose()

    assert health.version is not None
    assert is_supported_version(health.version)
    assert health.eviction_policy == "noeviction"
    assert not health.degraded
    assert health.warnings == ()


async def test_evicting_policy_is_reported_degraded_with_a_loud_warning(
    own_redis: OwnRedisFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = own_redis()
    client = RedisTarget(url=server.url).client()
    try:
        await client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING, logger="conveyor.redis.connection"):
            health = await check_server(client)
    finally:
        await client.aclose()

    assert health.degraded
    assert health.eviction_policy == "allkeys-lru"
    assert any("IMPORTANT" in w and "noeviction" in w for w in health.warnings)
    assert any(r.levelno == logging.WARNING and "IMPORTANT" in r.getMessage() for r in caplog.records)


@pytest.fixture
def limited_user_url(redis_server: EmbeddedRedis, redis_url: str) -> Iterator[str]:
    """A URL logging in as an ACL user that may run everything but INFO and CONFIG."""
    admin = SyncRedis.from_url(redis_url)
    admin.acl_setuser("limited", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info", "-config"])
    try:
        yield f"redis://limited:pw@127.0.0.1:{redis_server.port}/0"
    finally:
        admin.acl_deluser("limited")
        admin.close()


async def test_check_server_without_info_and_config_warns_instead_of_failing(limited_user_url: str) -> None:
    client = RedisTarget(url=limited_user_url).client()
    try:
        health = await check_server(client)
        assert await client.ping() is True
    finally:
        await client.aclose()

    assert health.version is None
    assert health.eviction_policy is None
    assert not health.degraded
    assert len(health.warnings) == 2
    assert "version" in health.warnings[0]
    assert "noeviction" in health.warnings[1]


# -- the embedded fallback ----------------------------------------------------------------------------


async def test_resolve_target_starts_then_attaches_to_the_embedded_server(
    tmp_path_factory: pytest.TempPathFactory, no_redis_env: None
) -> None:
    settings = load_settings(_env_file=None, conveyor_data_dir=tmp_path_factory.mktemp("data"))

    target, server = resolve_target(settings)
    assert server is not None
    try:
        _, attached = resolve_target(settings)
        assert server.owner
        assert attached is not None
        assert not attached.owner
        client = target.client()
        try:
            await ping_or_raise(client)
        finally:
            await client.aclose()
    finally:
        server.stop()


def test_resolve_target_leaves_a_configured_redis_alone(redis_url: str, no_redis_env: None) -> None:
    target, server = resolve_target(load_settings(_env_file=None, redis_url=redis_url))

    assert server is None
    assert target.url == redis_url


# -- Sentinel -----------------------------------------------------------------------------------------


@pytest.fixture
def sentinel_port(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real Sentinel (`redis-server --sentinel`) monitoring the session server as `mymaster`."""
    work = tmp_path_factory.mktemp("sentinel")
    port = _free_port()
    config = work / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {work}\nlogfile {work / 'sentinel.log'}\n"
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
        f'sentinel auth-pass mymaster "{redis_server.password}"\n'
    )
    process = subprocess.Popen([find_redis_server(), str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    try:
        _wait_for_sentinel(port, process, work / "sentinel.log")
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def test_sentinel_target_connects_to_the_master(
    sentinel_port: int, redis_server: EmbeddedRedis, redis_url: str
) -> None:
    target = RedisTarget(
        sentinels=(("127.0.0.1", sentinel_port),), sentinel_master="mymaster", password=redis_server.password, db=1
    )
    client, blocking = target.client(), target.client(blocking=True)
    try:
        await client.set("via-sentinel", "yes")
        assert await client.get("via-sentinel") == "yes"
        assert (await client.client_info())["db"] == 1
        assert await blocking.bzpopmin("conveyor:test:marker", timeout=0.2) is None
        assert (await check_server(client)).eviction_policy == "noeviction"
    finally:
        await client.aclose()
        await blocking.aclose()
    direct = SyncRedis.from_url(f"redis://:{quote(redis_server.password)}@127.0.0.1:{redis_server.port}/1")
    assert direct.get("via-sentinel") == b"yes"
    direct.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_sentinel(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    client = SyncRedis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"sentinel exited: {log.read_text() if log.exists() else ''}")
            with contextlib.suppress(RedisConnectionError):  # not listening yet
                if client.sentinel_get_master_addr_by_name("mymaster"):
                    return
            time.sleep(0.05)
        pytest.fail("sentinel did not come up within 10 s")
    finally:
        client.close()
