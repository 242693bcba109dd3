"""The documented exit codes of the real `conveyor` process, each error a single line without a traceback."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from redis.client import Redis as SyncRedis

from conveyor.redis.embedded import EmbeddedRedis
from tests.cli.conftest import Cli

OwnRedisFactory = Callable[..., EmbeddedRedis]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["add", "no-such-queue", "echo"], 2, "Unknown queue 'no-such-queue'"),
        (["add", "background", "echo", "{not json"], 2, "DATA_JSON is not valid JSON"),
        (["add", "background", "greet", '{"name": 7}'], 2, "Invalid payload for background/greet"),
        (["worker", "--queues", "background,nope"], 2, "Unknown queue 'nope'"),
        (["worker", "--concurrency", "background=zero"], 2, "--concurrency 'background=zero'"),
        (["job", "background", "404"], 1, "No job '404' in queue 'background'"),
        (["stats", "--app", "tests.cli.no_such_module:create_app"], 3, "Cannot import 'tests.cli.no_such_module'"),
        (["stats", "--app", "conveyor.standard:DEFAULT_APP"], 3, "is a str, not a Conveyor"),
    ],
)
def test_errors_exit_with_their_code_and_one_line(conveyor_cli: Cli, args: list[str], code: int, says: str) -> None:
    result = conveyor_cli.run(*args)
    assert result.returncode == code, result.stderr
    assert says in _one_error_line(result.stderr)


@pytest.mark.parametrize(
    "args",
    [["add", "background", "echo", "{}"], ["stats"], ["worker"], ["worker", "--processes", "2"], ["up"]],
)
def test_redis_down_exits_3_naming_the_server_without_its_password(conveyor_cli: Cli, args: list[str]) -> None:
    conveyor_cli.env["REDIS_URL"] = f"redis://:s3cret@127.0.0.1:{_closed_port()}/0"
    result = conveyor_cli.run(*args)
    assert result.returncode == 3, result.stderr
    assert "Cannot reach Redis at redis://127.0.0.1:" in _one_error_line(result.stderr)
    assert "s3cret" not in result.stderr


def test_invalid_setting_exits_3(conveyor_cli: Cli) -> None:
    conveyor_cli.env["CONVEYOR_QUEUES"] = "{broken"
    result = conveyor_cli.run("stats")
    assert result.returncode == 3, result.stderr
    assert "conveyor_queues" in _one_error_line(result.stderr).lower()


def test_missing_argument_is_a_usage_error(conveyor_cli: Cli) -> None:
    result = conveyor_cli.run("job", "background")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_add_to_a_redis_out_of_memory_exits_3_saying_nothing_was_written_and_what_to_do(
    conveyor_cli: Cli, own_redis: OwnRedisFactory
) -> None:
    server = own_redis()
    with SyncRedis.from_url(server.url) as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")
    conveyor_cli.env["REDIS_URL"] = server.url
    result = conveyor_cli.run("add", "background", "echo", "{}")
    assert result.returncode == 3, result.stderr
    line = _one_error_line(result.stderr)
    assert "out of memory" in line
    assert "nothing was written" in line
    assert "Raise maxmemory" in line
