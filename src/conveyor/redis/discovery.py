"""Which embedded server to use when no Redis is configured: found the way git finds its repository.

In order:

1. an explicit data dir (`CONVEYOR_DATA_DIR`, `conveyor --data-dir`) wins: its server, and nothing else;
2. else the nearest `.conveyor/` with a running server, from the current folder up to the filesystem root;
3. else (not for `EmbeddedMode.PROJECT`) the per-user registry of running servers, if it lists exactly one
   (several is an error that lists them: the user chooses with the data dir);
4. else, unless the mode only attaches, a new server is started in `./.conveyor` (the data dir).

`EmbeddedMode` is who asks: a one-shot command (`conveyor add`, `stats`, ...) only attaches, so a job is never
written into a throwaway server nobody serves; `conveyor worker` attaches to whatever runs or starts one;
`conveyor up` (and a library `Conveyor()`) belongs to the project it runs in, so it never borrows another
project's server from the registry.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import EmbeddedRedisError
from conveyor.redis.registry import RegisteredServer, ServerRegistry


class EmbeddedMode(StrEnum):
    """How a process may use the embedded server (see the module docstring)."""

    ATTACH = "attach"
    """Only a running server, found by the data dir, the folders above, or the registry (one-shot commands)."""
    SHARE = "share"
    """The same search, else start one in the data dir (`conveyor worker`)."""
    PROJECT = "project"
    """The data dir or the folders above, else start one in the data dir (`conveyor up`, the library)."""


class NoRunningServerError(EmbeddedRedisError):
    """A command that only attaches found no running embedded server."""


class AmbiguousServerError(EmbeddedRedisError):
    """Several embedded servers run and nothing says which one the command means."""


def find_embedded(
    data_dir: Path,
    *,
    explicit: bool,
    mode: EmbeddedMode,
    registry: ServerRegistry | None = None,
    cwd: Path | None = None,
) -> EmbeddedRedis:
    """The embedded server to use, attached to or started as `mode` allows (see the module docstring).

    Args:
        data_dir: the configured data dir (relative paths are taken from `cwd`).
        explicit: True when the user set the data dir; then only that one is considered.
        mode: who asks, and so whether a server may be started.
        registry: the registry of running servers; the user's own when None.
        cwd: where the search starts; the current directory when None.

    Raises:
        NoRunningServerError: `mode` is ATTACH and no running server was found.
        AmbiguousServerError: the registry lists several running servers and none is in or above `cwd`.
        EmbeddedRedisError: a server had to be started and could not be.
    """
    registry = registry if registry is not None else ServerRegistry()
    here = (cwd or Path.cwd()).resolve()
    home = data_dir if data_dir.is_absolute() else here / data_dir
    if explicit:
        found = EmbeddedRedis.attach(home)
    else:
        found = _nearest_above(here, data_dir) or (None if mode is EmbeddedMode.PROJECT else _registered(registry))
    if found is not None:
        return found
    if mode is EmbeddedMode.ATTACH:
        raise NoRunningServerError(_nothing_running(home, explicit=explicit, registry=registry))
    return EmbeddedRedis.attach_or_start(home, registry=registry)


def _nearest_above(here: Path, data_dir: Path) -> EmbeddedRedis | None:
    if data_dir.is_absolute():
        return EmbeddedRedis.attach(data_dir)
    for folder in (here, *here.parents):
        found = EmbeddedRedis.attach(folder / data_dir)
        if found is not None:
            return found
    return None


def _registered(registry: ServerRegistry) -> EmbeddedRedis | None:
    servers = registry.running()
    if len(servers) > 1:
        raise AmbiguousServerError(_several_running(servers))
    return EmbeddedRedis.attach(servers[0].data_dir) if servers else None


def _nothing_running(home: Path, *, explicit: bool, registry: ServerRegistry) -> str:
    if explicit:
        where = f"in {home} (CONVEYOR_DATA_DIR / --data-dir)"
    else:
        where = f"in ./{home.name} and the folders above, nor in the user registry ({registry.path})"
    return (
        f"No running Conveyor found {where}; start one with 'conveyor up' (or 'conveyor worker'), "
        "or set REDIS_URL to use your own Redis."
    )


def _several_running(servers: list[RegisteredServer]) -> str:
    listed = ", ".join(f"{server.data_dir} (redis pid {server.pid})" for server in servers)
    return (
        f"{len(servers)} Conveyor servers are running and none is in this folder or above: {listed}. "
        "Choose one with 'conveyor --data-dir DIR ...' or CONVEYOR_DATA_DIR=DIR, or run the command in its project."
    )
