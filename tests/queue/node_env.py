"""Node BullMQ for the compatibility matrix: each locked package dir under `tests/queue/node/` (`bullmq-5`,
`bullmq-6`: one bullmq release of that major plus `@bull-board/api`) is installed with `npm ci` into a cache dir
(reused while its package-lock.json is unchanged), with the `.mjs` scripts of `tests/queue/node/` beside it.

Tests that take the `node_bullmq` fixture run once per package dir. They are skipped, with the reason, only when
node or npm is missing or npm cannot install (offline).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent / "node"
MATRIX = ("bullmq-5", "bullmq-6")
INSTALL_TIMEOUT_S = 240
RUN_TIMEOUT_S = 30
QUIET = ("--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error")


@dataclass(frozen=True)
class NodeBullmq:
    """An installed package dir: where the scripts run, and the bullmq version it holds."""

    workdir: Path
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def cache_root() -> Path:
    base = os.environ.get("CONVEYOR_TEST_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "conveyor-tests" / "node"


_unreachable: list[str] = []  # why npm failed, once it has: the other package dirs are skipped at once


def install(package: str) -> NodeBullmq:
    """`tests/queue/node/<package>` installed (or found installed) in the cache, with the scripts copied in."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("the Node BullMQ matrix needs node and npm on PATH")
    source = NODE_DIR / package
    lock = (source / "package-lock.json").read_bytes()
    target = cache_root() / f"{package}-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (target / ".installed").exists():
        if _unreachable:
            pytest.skip(_unreachable[0])
        _npm_ci(npm, source, target)
        for stale in target.parent.glob(f"{package}-*"):  # installs of older lock files
            if stale != target and (stale / ".installed").exists():
                shutil.rmtree(stale, ignore_errors=True)
    for script in NODE_DIR.glob("*.mjs"):  # replaced whole: another test process may be running it
        staged = target / f".{script.name}.{os.getpid()}"
        shutil.copy(script, staged)
        staged.replace(target / script.name)
    version = json.loads((target / "node_modules" / "bullmq" / "package.json").read_text())["version"]
    return NodeBullmq(target, version)


def _npm_ci(npm: str, source: Path, target: Path) -> None:
    """Install `source`'s lock into `target` (staged beside it, then renamed), or skip the test saying why."""
    staging = target.with_name(f"{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(source / name, staging / name)
    try:
        subprocess.run(
            [npm, "ci", "--prefer-offline", "--fetch-retry-maxtimeout=15000", *QUIET],
            cwd=staging, check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        lines = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").splitlines() or [str(exc)]
        reason = " / ".join(line for line in lines if " code " in line or "errno" in line) or lines[0]
        _unreachable.append(f"npm could not install {source.name} (is the npm registry reachable?): {reason[:300]}")
        pytest.skip(_unreachable[0])
    (staging / ".installed").touch()
    if (target / ".installed").exists():  # another test process installed it meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    else:
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)


def run_node(env: NodeBullmq, redis_url: str, *args: str) -> str:
    """Run one script to completion; its stdout."""
    result = subprocess.run(
        [shutil.which("node") or "node", *args], cwd=env.workdir, env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run_node_json(env: NodeBullmq, redis_url: str, *args: str) -> object:
    return json.loads(run_node(env, redis_url, *args))


@contextmanager
def node_process(env: NodeBullmq, redis_url: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A long-running script, started and waited for until it prints `ready`; terminated on exit."""
    process = subprocess.Popen(
        [shutil.which("node") or "node", *args], cwd=env.workdir, env={**os.environ, "REDIS_URL": redis_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == "ready", f"{args[0]} did not start: {line!r} {process.stderr.read() if process.stderr else ''}"
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session", params=MATRIX)
def node_bullmq(request: pytest.FixtureRequest) -> NodeBullmq:
    """Node BullMQ of each major in the matrix (the test runs once per package dir)."""
    return install(str(request.param))
