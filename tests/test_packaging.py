"""The sdist and the wheel carry everything Conveyor reads at run time, and the wheel works in a fresh venv.

Built with `python -m build` (wheel from the sdist, as PyPI users get it) without build isolation, so the build
tools are the locked ones; the fresh venv gets the locked runtime dependencies (hash-checked) and the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import stop_processes

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "conveyor"
# Files that are not Python but that the installed package reads: the dashboard, the GraphQL SDL, Grafana's JSON.
DATA_FILES = [
    *sorted(str(path.relative_to(PACKAGE.parent)) for path in (PACKAGE / "dashboard").rglob("*") if path.is_file()),
    "conveyor/api/schema.graphql",
    "conveyor/observability/grafana-dashboard.json",
    "conveyor/py.typed",
]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "conveyor"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "*cache*", "*.egg-info", "build"))
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def fresh_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the locked runtime dependencies and the built wheel (not the source tree)."""
    env = tmp_path_factory.mktemp("venv")
    venv.create(env, with_pip=True)
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for args in (["--require-hashes", "-r", str(ROOT / "requirements.txt")], ["--no-deps", *_wheels(dist)]):
        done = subprocess.run([*pip, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return env


def _wheels(dist: Path) -> list[str]:
    return [str(path) for path in dist.glob("conveyor-*.whl")]


def test_the_wheel_holds_the_package_data(dist: Path) -> None:
    [wheel] = _wheels(dist)
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in DATA_FILES if name not in names]
    assert not missing, f"not in {Path(wheel).name}: {missing}"


def test_the_sdist_holds_the_package_data(dist: Path) -> None:
    [sdist] = dist.glob("conveyor-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = [f"src/{name}" for name in DATA_FILES]
    missing = [name for name in wanted if name not in names]
    assert not missing, f"not in {sdist.name}: {missing}"


def test_the_installed_command_shows_its_help(fresh_venv: Path, tmp_path: Path) -> None:
    shown = subprocess.run(
        [str(fresh_venv / "bin" / "conveyor"), "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    for command in ("up", "worker", "add", "job", "stats"):
        assert f" {command} " in shown.stdout, shown.stdout


def test_the_installed_package_runs_a_job_on_the_embedded_redis(fresh_venv: Path, tmp_path: Path) -> None:
    """`conveyor up` from the wheel starts its embedded Redis and a worker; `conveyor add` hands it a job."""
    source = tmp_path / "hello.py"
    source.write_text("def greet(name):\n    return f'hello {name}'\n")
    env = _clean_env(
        CONVEYOR_DATA_DIR=str(tmp_path / "data"),
        CONVEYOR_STATE_DIR=str(tmp_path / "state"),  # not the developer's registry of running servers
        CONVEYOR_API_PORT="0",
        CONVEYOR_SHUTDOWN_GRACE_S="1",
    )
    conveyor = str(fresh_venv / "bin" / "conveyor")
    with _running([conveyor, "up"], env, tmp_path) as log:
        _wait(lambda: "Redis:" in log.read_text(), log)
        added = subprocess.run(
            [conveyor, "add", "indexing", "index-file", json.dumps({"filePath": str(source)})],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        job_id = added.stdout.strip()
        _wait(lambda: _job(conveyor, job_id, env, tmp_path).get("state") == "completed", log)
    imported = subprocess.run(
        [str(fresh_venv / "bin" / "python"), "-c", "import conveyor; print(conveyor.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    assert str(fresh_venv) in imported.stdout, imported.stdout + imported.stderr


def _job(conveyor: str, job_id: str, env: dict[str, str], cwd: Path) -> dict[str, object]:
    shown = subprocess.run(
        [conveyor, "job", "indexing", job_id, "--json"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    return json.loads(shown.stdout) if shown.returncode == 0 else {}


def _clean_env(**values: str) -> dict[str, str]:
    """This environment without Redis/Conveyor settings or the repository on the import path, plus `values`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CONVEYOR_", "PYTHON", "VIRTUAL_ENV"))}
    return {**kept, **values}


@contextmanager
def _running(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[Path]:
    """Run `args` in the background for the block, output in the yielded log file; SIGTERM it after."""
    log = cwd / "up.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        stop_processes([proc], 30)


def _wait(condition: Callable[[], bool], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s; `conveyor up` said:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
