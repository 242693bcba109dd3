"""The workers `bench_worker_cli` compares, each started as its users start it, in a process of its own.

- `cli`: `conveyor worker --app bench.cli_app:app` (the `conveyor` script; metrics, logging and tracing settings
  as shipped);
- `bare`: Conveyor's runtime built in a small script (`bench/worker_proc.py`, as in `bench.run`);
- `node5`, `node6`: a Node BullMQ `Worker` of each major (`bench/node/drain_worker.mjs`), installed from the
  locked package dirs of the Node compatibility tests (`tests/queue/node/bullmq-5`, `bullmq-6`) with their
  installer, into the same cache.

All serve the queue `bench` at concurrency 10; the handler is a no-op (`noop`) or returns its start time (`start`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.cli_app import CONCURRENCY, QUEUE
from bench.common import ROOT, WorkerProcess

NODE_SCRIPT = ROOT / "bench" / "node" / "drain_worker.mjs"
LABELS = {"cli": "conveyor worker", "bare": "bare runtime", "node5": "Node BullMQ 5", "node6": "Node BullMQ 6"}

Launcher = Callable[[str, str], subprocess.Popen[str]]  # (redis url, handler) -> a process not yet ready


class WorkerKinds:
    """How to start each kind of worker; `available` lists those that can run here (Node may be missing)."""

    def __init__(self, src: Path | None = None) -> None:
        self.src = src  # another source tree of `conveyor` to run (e.g. an export of an older commit)
        self.logs = Path(tempfile.mkdtemp(prefix="bench-worker-logs-"))
        self.node_dirs: dict[str, Path] = {}
        self.skipped: dict[str, str] = {}
        for kind, package in (("node5", "bullmq-5"), ("node6", "bullmq-6")):
            try:
                self.node_dirs[kind] = _install_node(package)
            except Exception as exc:  # no node/npm, or npm could not install: the baseline is reported missing
                self.skipped[kind] = str(exc)

    @property
    def available(self) -> list[str]:
        return ["cli", "bare", *self.node_dirs]

    def spawn(self, kind: str, url: str, handler: str) -> subprocess.Popen[str]:
        """Start a worker of `kind` (it reports ready later: see `ready`)."""
        env = {**os.environ, "REDIS_URL": url, "PYTHONPATH": self._pythonpath(), "BENCH_HANDLER": handler}
        if kind == "cli":
            args = [*_conveyor_command(), "worker", "--app", "bench.cli_app:app"]
        elif kind == "bare":
            args = [sys.executable, "-m", "bench.worker_proc", "conveyor", QUEUE, str(CONCURRENCY), handler]
        else:
            node = shutil.which("node") or "node"
            args = [node, str(self.node_dirs[kind] / NODE_SCRIPT.name), QUEUE, str(CONCURRENCY), handler]
        with open(self.logs / f"{kind}.log", "a") as log:  # the child keeps its own descriptor
            return subprocess.Popen(args, env=env, cwd=self.logs, stdout=subprocess.PIPE, stderr=log, text=True)

    def start(self, kind: str, url: str, handler: str) -> WorkerProcess:
        """A worker of `kind`, returned once serving."""
        proc = self.spawn(kind, url, handler)
        ready(proc, kind)
        return WorkerProcess(proc)

    def _pythonpath(self) -> str:
        return os.pathsep.join(str(p) for p in (self.src, ROOT) if p is not None)


def ready(proc: subprocess.Popen[str], kind: str) -> None:
    """Wait until the worker says it serves: `ready` (bare, Node) or the banner's `serving` line (cli)."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "ready" or " serving " in line:
            return
    proc.wait()
    raise RuntimeError(f"{LABELS[kind]} did not start (exit code {proc.returncode}); see its log")


def _conveyor_command() -> list[str]:
    """The `conveyor` script users run, beside this Python (`python -m conveyor` where there is none)."""
    script = Path(sys.executable).with_name("conveyor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conveyor"]


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
