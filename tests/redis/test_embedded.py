"""The embedded server: a real redis-server started, stopped, killed and restarted by `EmbeddedRedis`."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.client import Redis as SyncRedis
from redis.exceptions import AuthenticationError
from tests.support import aof_synced

from conveyor.redis.embedded import EmbeddedRedis, socket_path_for
from conveyor.redis.errors import EmbeddedRedisError

OwnRedisFactory = Callable[..., EmbeddedRedis]  # the `own_redis` fixture


def _client(url: str) -> SyncRedis:
    return SyncRedis.from_url(url, decode_responses=True, socket_timeout=5)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_server_answers_ping_with_its_password(redis_server: EmbeddedRedis) -> None:
    assert _client(redis_server.url).ping() is True


def test_server_refuses_clients_without_the_password(redis_server: EmbeddedRedis) -> None:
    with pytest.raises(AuthenticationError):
        _client(f"redis://127.0.0.1:{redis_server.port}/0").ping()
    with pytest.raises(AuthenticationError):
        _client(f"redis://:wrong@127.0.0.1:{redis_server.port}/0").ping()


def test_server_is_configured_for_durable_queues(redis_server: EmbeddedRedis) -> None:
    config = _client(redis_server.url).config_get("*")

    assert config["maxmemory-policy"] == "noeviction"
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["protected-mode"] == "yes"
    assert config["dir"] == str(redis_server.data_dir / "redis")


def test_tcp_server_listens_on_loopback_only(redis_server: EmbeddedRedis) -> None:
    assert redis_server.url.startswith("redis://:")
    assert _client(redis_server.url).config_get("bind")["bind"] == "127.0.0.1"


def test_unix_server_opens_no_tcp_port_and_a_private_socket(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    assert server.socket_path is not None

    assert _client(server.url).config_get("port")["port"] == "0"
    assert stat.S_IMODE(server.socket_path.stat().st_mode) == 0o700


def test_secrets_and_state_files_are_private(own_redis: OwnRedisFactory) -> None:
    server = own_redis()

    for name in ("redis.password", "redis.conf", "redis.json"):
        assert stat.S_IMODE((server.data_dir / name).stat().st_mode) == 0o600, name
    state = json.loads((server.data_dir / "redis.json").read_text())
    assert state == {"url": server.url, "pid": server.pid}


def test_password_is_not_on_the_command_line(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    if not Path(f"/proc/{server.pid}/cmdline").exists():
        pytest.skip("needs /proc")

    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
    assert server.password not in cmdline


def test_data_survives_stop_and_start(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    _client(server.url).set("greeting", "hello")

    server.stop()
    server.start()

    assert _client(server.url).get("greeting") == "hello"


def test_stop_leaves_no_process_and_no_state(own_redis: OwnRedisFactory) -> None:
    server = own_redis()
    pid = server.pid
    assert pid is not None
    assert server.socket_path is not None

    server.stop()

    assert _process_gone(pid)
    assert not server.is_running
    assert server.pid is None
    assert not (server.data_dir / "redis.json").exists()
    assert not server.socket_path.exists()


def test_kill_then_restart_keeps_data_once_the_aof_is_synced(own_redis: OwnRedisFactory) -> None:
    server = own_redis(transport="tcp")
    url, pid = server.url, server.pid
    assert pid is not None
    client = _client(url)
    client.set("job:1", "payload")
    deadline = time.monotonic() + 10
    while not aof_synced(client.info("persistence")):  # appendfsync everysec: on disk within about a second
        assert time.monotonic() < deadline, client.info("persistence")
        time.sleep(0.05)

    server.kill()
    assert _process_gone(pid)
    server.restart()

    assert server.url == url  # same port and password: clients reconnect unchanged
    assert _client(url).get("job:1") == "payload"


def test_context_manager_starts_and_stops(tmp_path_factory: pytest.TempPathFactory) -> None:
    with EmbeddedRedis(tmp_path_factory.mktemp("ctx")) as server:
        pid = server.pid
        assert pid is not None
        assert _client(server.url).ping() is True
    assert _process_gone(pid)


def test_attach_or_start_reuses_a_live_server(own_redis: OwnRedisFactory) -> None:
    owner = own_redis()

    attached = EmbeddedRedis.attach_or_start(owner.data_dir)

    assert not attached.owner
    assert attached.url == owner.url
    assert attached.pid == owner.pid
    attached.stop()  # not the owner: must leave the server running
    assert owner.is_running
    assert _client(attached.url).ping() is True


def test_attach_or_start_starts_a_server_with_the_stored_password(own_redis: OwnRedisFactory) -> None:
    first = own_redis()
    _client(first.url).set("kept", "1")
    url = first.url
    first.stop()

    second = EmbeddedRedis.attach_or_start(first.data_dir)
    try:
        assert second.owner
        assert second.is_running
        assert second.url == url
        assert _client(second.url).get("kept") == "1"
    finally:
        second.stop()


def test_attach_or_start_ignores_the_state_of_a_killed_server(own_redis: OwnRedisFactory) -> None:
    crashed = own_redis()
    crashed.kill()
    assert (crashed.data_dir / "redis.json").exists()

    fresh = EmbeddedRedis.attach_or_start(crashed.data_dir)
    try:
        assert fresh.owner
        assert fresh.is_running
        assert _client(fresh.url).ping() is True
    finally:
        fresh.stop()


def test_start_refuses_a_second_server_on_the_same_data_dir(own_redis: OwnRedisFactory) -> None:
    running = own_redis()

    with pytest.raises(EmbeddedRedisError, match="already runs"):
        EmbeddedRedis(running.data_dir).start()
    assert _client(running.url).ping() is True


def test_long_data_dir_puts_the_socket_in_a_short_private_dir(
    own_redis: OwnRedisFactory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("long") / ("very-long-directory-name-" * 5)
    assert len(os.fsencode(data_dir / "redis.sock")) > 107

    server = own_redis(data_dir=data_dir)

    assert server.socket_path is not None
    assert not server.socket_path.is_relative_to(server.data_dir)
    assert len(os.fsencode(server.socket_path)) <= 107
    assert stat.S_IMODE(server.socket_path.parent.stat().st_mode) == 0o700
    assert _client(server.url).ping() is True
    assert socket_path_for(server.data_dir) == server.socket_path  # stable across restarts


def test_start_failure_reports_the_log_tail(tmp_path_factory: pytest.TempPathFactory) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedRedis(tmp_path_factory.mktemp("busy"), transport="tcp", port=taken.getsockname()[1])

        with pytest.raises(EmbeddedRedisError, match=r"(?i)address already in use"):
            server.start()
    assert not server.is_running


def test_unrunnable_binary_raises_embedded_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    server = EmbeddedRedis(tmp_path_factory.mktemp("nobin"), binary="/nonexistent/redis-server")

    with pytest.raises(EmbeddedRedisError, match=r"conveyor\[embedded\]"):
        server.start()


def test_tcp_url_before_start_is_an_error(tmp_path_factory: pytest.TempPathFactory) -> None:
    with pytest.raises(EmbeddedRedisError, match="start"):
        _ = EmbeddedRedis(tmp_path_factory.mktemp("unstarted"), transport="tcp").url
