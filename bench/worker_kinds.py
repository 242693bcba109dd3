"""The workers `bench_worker_cli` compares, each started as its users start it, in a process of its own.

- `cli`: `conveyor worker --app bench.cli_app:app` (the `conveyor` script; metrics, logging and tracing settings
  as shipped), run from a virtualenv that holds exactly the run lock (`requirements.txt`, what
  `python3 bootstrap.py up` installs), made once per lock in a cache (`run_env`); `before`: the same command
  run from another source tree of `conveyor` (`--before DIR`, e.g. an export of an older commit's `src/`), for
  before/after figures in one run, with the same virtualenv (its sources come first on the path);
- `bare`: Conveyor's runtime built in a small script (`bench/worker_proc.py`, as in `bench.run`);
- `node5`, `node6`: a Node BullMQ `Worker` of each major (`bench/node/drain_worker.mjs`), installed from the
  locked package dirs of the Node compatibility tests (`tests/queue/node/bullmq-5`, `bullmq-6`) with their
  installer, into the same cache.

All serve the queue `bench` at concurrency 10; the handler is a no-op (`noop`) or returns its start time (`start`).

The Python workers run with bytecode caches, as an installed package has them (pip compiles at install): this
session may set PYTHONDONTWRITEBYTECODE, which would make every start compile Conveyor's sources again (about
0.1 s here). Their caches go to a temporary PYTHONPYCACHEPREFIX, written by `warm_up` before anything is timed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from pathlib import Path

from bench.cli_app import CONCURRENCY, QUEUE
from bench.common import ROOT, WorkerProcess

NODE_SCRIPT = ROOT / "bench" / "node" / "drain_worker.mjs"
LABELS = {
    "cli": "conveyor worker",
    "before": "conveyor worker, before",
    "bare": "bare runtime",
    "node5": "Node BullMQ 5",
    "node6": "Node BullMQ 6",
    "huey": "huey",  # enqueue only: its producer, in the benchmark's process
    "script": "add script alone",  # enqueue only: the floor of `bench/floors.py`
    "libs": "its libraries alone",  # RSS only: the floor of `bench/floors.py`
}

Launcher = Callable[[str, str], subprocess.Popen[str]]  # (redis url, handler) -> a process not yet ready


class WorkerKinds:
    """How to start each kind of worker; `available` lists those that can run here (Node may be missing)."""

    def __init__(self, before: Path | None = None) -> None:
        self.before = before  # another source tree of `conveyor`, run by the `before` kind
        self.logs = Path(tempfile.mkdtemp(prefix="bench-worker-logs-"))
        self.pycache = Path(tempfile.mkdtemp(prefix="bench-pycache-"))
        self.cli_script = run_env() / "bin" / "conveyor"
        self.node_dirs: dict[str, Path] = {}
        self.skipped: dict[str, str] = {}
        for kind, package in (("node5", "bullmq-5"), ("node6", "bullmq-6")):
            try:
                self.node_dirs[kind] = _install_node(package)
            except Exception as exc:  # no node/npm, or npm could not install: the baseline is reported missing
                self.skipped[kind] = str(exc)

    @property
    def available(self) -> list[str]:
        return ["cli", *(["before"] if self.before else []), "bare", *self.node_dirs]

    def spawn(
        self, kind: str, url: str, handler: str, env: dict[str, str] | None = None, stderr: Path | None = None
    ) -> subprocess.Popen[str]:
        """Start a worker of `kind` (it reports ready later: see `ready`), with `env` added to its environment and
        its stderr appended to `stderr` (default: the kind's log)."""
        env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, **(env or {})}
        sources = [self.before, ROOT] if kind == "before" else [ROOT]
        env.update(REDIS_URL=url, PYTHONPATH=os.pathsep.join(map(str, sources)), PYTHONPYCACHEPREFIX=str(self.pycache))
        env["BENCH_HANDLER"] = handler
        if kind == "cli":
            args = [str(self.cli_script), "worker", "--app", "bench.cli_app:app"]
        elif kind == "before":
            args = [str(self.cli_script.with_name("python")), "-m", "conveyor", "worker", "--app", "bench.cli_app:app"]
        elif kind == "bare":
            args = [sys.executable, "-m", "bench.worker_proc", "conveyor", QUEUE, str(CONCURRENCY), handler]
        else:
            node = shutil.which("node") or "node"
            args = [node, str(self.node_dirs[kind] / NODE_SCRIPT.name), QUEUE, str(CONCURRENCY), handler]
        with open(stderr or self.logs / f"{kind}.log", "a") as log:  # the child keeps its own descriptor
            return subprocess.Popen(args, env=env, cwd=self.logs, stdout=subprocess.PIPE, stderr=log, text=True)

    def start(self, kind: str, url: str, handler: str) -> WorkerProcess:
        """A worker of `kind`, returned once serving."""
        proc = self.spawn(kind, url, handler)
        ready(proc, kind)
        return WorkerProcess(proc)

    def warm_up(self, url: str) -> None:
        """Start and stop each Python worker once, untimed: its bytecode caches are written."""
        for kind in ("cli", "before", "bare"):
            if kind in self.available:
                self.start(kind, url, "noop").stop()


def ready(proc: subprocess.Popen[str], kind: str) -> None:
    """Wait until the worker says it serves: `ready` (bare, Node) or the banner's `serving` line (cli)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready" or " serving " in line:
            return
    proc.wait()
    raise RuntimeError(f"{LABELS[kind]} did not start (exit code {proc.returncode}); see its log")


def run_env() -> Path:
    """A virtualenv holding exactly the run lock and this checkout's `conveyor` (editable), as users get it from
    `python3 bootstrap.py up`; made once per lock, pyproject.toml and checkout (hash-checked install)."""
    lock = ROOT / "requirements.txt"
    made_of = lock.read_bytes() + (ROOT / "pyproject.toml").read_bytes() + str(ROOT).encode()  # editable: this tree
    digest = hashlib.sha256(made_of).hexdigest()[:16]
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conveyor-bench" / f"run-{digest}"
    python = home / "bin" / "python"
    if not (home / ".complete").exists():
        shutil.rmtree(home, ignore_errors=True)
        print("bench: installing the run lock into a cached virtualenv (once per lock)", flush=True)
        venv.create(home, with_pip=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "--require-hashes", "-r", str(lock)], check=True)
        subprocess.run([*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)], check=True)
        (home / ".complete").touch()
    return home


def _install_node(package: str) -> Path:
    """The locked package dir installed (or found installed) by the Node tests' installer, with this bench's
    worker script beside it (replaced whole: a test process may be running scripts there)."""
    import pytest
    from tests.queue.node_env import install

    try:
        workdir = install(package).workdir
    except pytest.skip.Exception as exc:  # the installer reports a missing node/npm as a skipped test
        raise RuntimeError(str(exc)) from None
    staged = workdir / f".{NODE_SCRIPT.name}.{os.getpid()}"
    shutil.copy(NODE_SCRIPT, staged)
    staged.replace(workdir / NODE_SCRIPT.name)
    return workdir
