"""The per-user registry of running embedded servers, so a command run from any folder can find the one running.

A small JSON file, `servers.json`, in the user's state dir: `CONVEYOR_STATE_DIR` if set, else
`$XDG_STATE_HOME/conveyor`, else `~/.local/state/conveyor`. The process that starts an embedded server adds
`{"data_dir", "pid"}`; stopping it removes the entry; readers drop entries whose server is gone (a crash or a
SIGKILL leaves one behind). It holds no URL and no password: those stay in the data dir's 0600 `redis.json`.
A registry that cannot be written (read-only home) only costs discovery, so failures are logged, not raised.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from conveyor.redis.file_lock import file_lock

logger = logging.getLogger(__name__)

STATE_DIR_ENV_VAR = "CONVEYOR_STATE_DIR"


@dataclass(frozen=True)
class RegisteredServer:
    """One running embedded server: its data dir and the pid of its `redis-server`."""

    data_dir: Path
    pid: int


_Change = Callable[[list[RegisteredServer]], list[RegisteredServer]]


def default_state_dir() -> Path:
    """`CONVEYOR_STATE_DIR`, else `$XDG_STATE_HOME/conveyor`, else `~/.local/state/conveyor`."""
    explicit = os.environ.get(STATE_DIR_ENV_VAR)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state"
    return base / "conveyor"


class ServerRegistry:
    """The registry file in `state_dir` (see the module docstring); `ServerRegistry()` is the user's own."""

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir if state_dir is not None else default_state_dir()

    @property
    def path(self) -> Path:
        """The registry file."""
        return self.state_dir / "servers.json"

    def add(self, data_dir: Path, pid: int) -> None:
        """Record a server this process just started."""
        self._update(lambda servers: [*(s for s in servers if s.data_dir != data_dir), RegisteredServer(data_dir, pid)])

    def discard(self, data_dir: Path, pid: int) -> None:
        """Forget a server that stopped."""
        self._update(lambda servers: [s for s in servers if (s.data_dir, s.pid) != (data_dir, pid)])

    def running(self) -> list[RegisteredServer]:
        """The registered servers that still run, oldest first; dead entries are removed from the file."""
        if not self.path.exists():
            return []
        return self._update(lambda servers: [s for s in servers if _still_running(s)])

    def _update(self, change: _Change) -> list[RegisteredServer]:
        try:
            with self._locked():
                servers = change(self._read())
                self._write(servers)
                return servers
        except OSError as exc:
            logger.warning("cannot update the registry of embedded servers %s: %s", self.path, exc)
            return []

    def _locked(self) -> AbstractContextManager[None]:
        return file_lock(self.state_dir / "servers.lock")

    def _read(self) -> list[RegisteredServer]:
        try:
            entries = json.loads(self.path.read_text())
            return [RegisteredServer(Path(e["data_dir"]), int(e["pid"])) for e in entries]
        except FileNotFoundError:
            return []
        except (ValueError, KeyError, TypeError):
            logger.warning("ignoring the unreadable registry of embedded servers %s", self.path)
            return []

    def _write(self, servers: list[RegisteredServer]) -> None:
        text = json.dumps([{"data_dir": str(s.data_dir), "pid": s.pid} for s in servers], indent=1)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(text + "\n")
        os.replace(temporary, self.path)


def _still_running(server: RegisteredServer) -> bool:
    """The pid lives and the data dir's `redis.json` still names it (a reused pid would not be there)."""
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        state = json.loads((server.data_dir / "redis.json").read_text())
        return int(state["pid"]) == server.pid
    except (OSError, ValueError, KeyError, TypeError):
        return False
