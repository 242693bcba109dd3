"""With no Redis configured, every command finds the one running Conveyor the way git finds its repository:
the `.conveyor` of this folder or one above, else the only server in the user registry. Only `up` and `worker`
may start an embedded server; other commands with nothing to attach to exit 3 and leave no `.conveyor` behind."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState, load_settings
from tests.cli.conftest import APP, Cli, wait_until
from tests.conftest import OwnRedisFactory


@dataclass
class Project:
    """A project folder (where `up` runs), a subfolder of it, and a folder outside it, sharing one environment."""

    root: Cli
    sub: Cli
    outside: Cli

    @property
    def data_dir(self) -> Path:
        return self.root.cwd / ".conveyor"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    """No REDIS_* and no CONVEYOR_DATA_DIR: each command has to find the deployment by itself."""
    env = {
        "CONVEYOR_APP": APP,
        "CONVEYOR_STATE_DIR": str(tmp_path / "state"),  # this test's registry of running servers
        "CONVEYOR_SHUTDOWN_GRACE_S": "1",
        "CONVEYOR_HEARTBEAT_S": "0.5",
        "CONVEYOR_API_PORT": "0",
    }
    folders = [tmp_path / "project", tmp_path / "project" / "src" / "deep", tmp_path / "elsewhere"]
    for folder in folders:
        folder.mkdir(parents=True)
    clis = [Cli(env, folder) for folder in folders]
    yield Project(*clis)
    for cli in clis:
        cli.stop_all()


async def _start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    proc = cli.start(*args)
    await wait_until(lambda: "Redis:" in cli.output(proc) or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, cli.output(proc)
    return proc


async def _stop(cli: Cli, proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0, cli.output(proc)


async def _state(cli: Cli, job_id: str) -> str:
    shown = await cli.arun("job", "background", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    state: str = json.loads(shown.stdout)["state"]
    return state


def _redis_servers_under(folder: Path) -> list[int]:
    """Pids of the redis-server processes running in a data dir under `folder` (their working directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            name = (entry / "comm").read_text().strip()
            where = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if name.startswith("redis-server") and where.is_relative_to(folder):
            pids.append(int(entry.name))
    return pids


async def test_add_from_a_subfolder_or_from_outside_the_project_lands_in_the_running_up(project: Project) -> None:
    up = await _start(project.root, "up")
    for where in (project.sub, project.outside):
        added = await where.arun("-v", "add", "background", "echo", '{"n": 1}')
        assert added.returncode == 0, added.stderr
        (said,) = [line for line in added.stderr.splitlines() if line.startswith("Conveyor: Redis")]  # -v
        assert f"data in {project.data_dir}" in said
        job_id = added.stdout.strip()
        await wait_until(lambda: _completed(where, job_id), timeout=30, interval=0.3)  # noqa: B023 (awaited here)
        assert not (where.cwd / ".conveyor").exists()
    assert _redis_servers_under(project.root.cwd.parent) == [
        json.loads((project.data_dir / "redis.json").read_text())["pid"]
    ]
    await _stop(project.root, up)


async def _completed(cli: Cli, job_id: str) -> bool:
    return await _state(cli, job_id) == "completed"


@pytest.mark.parametrize("command", [["add", "background", "echo", "{}"], ["stats"], ["jobs", "background"]])
def test_a_command_with_nothing_running_exits_3_with_a_hint_and_creates_nothing(
    project: Project, command: list[str]
) -> None:
    result = project.outside.run(*command)
    assert result.returncode == 3, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "No running Conveyor found" in line
    assert "conveyor up" in line
    assert "REDIS_URL" in line
    assert list(project.outside.cwd.iterdir()) == []  # no throwaway .conveyor/
    assert _redis_servers_under(project.outside.cwd.parent) == []


async def test_a_worker_beside_up_attaches_to_its_redis(project: Project) -> None:
    up = await _start(project.root, "up")
    redis_pid = json.loads((project.data_dir / "redis.json").read_text())["pid"]
    worker = await _start(project.sub, "worker", "--queues", "background")
    assert f"embedded, pid {redis_pid}, attached; data in {project.data_dir}" in project.sub.output(worker)
    assert _redis_servers_under(project.root.cwd.parent) == [redis_pid]
    assert not (project.sub.cwd / ".conveyor").exists()
    await _stop(project.sub, worker)
    await _stop(project.root, up)


async def test_a_worker_with_nothing_running_starts_the_embedded_redis_in_its_folder(project: Project) -> None:
    worker = await _start(project.outside, "worker")
    assert "started by this process" in project.outside.output(worker)
    assert (project.outside.cwd / ".conveyor" / "redis.json").exists()
    await _stop(project.outside, worker)


async def test_several_running_servers_make_a_command_list_them_until_one_is_chosen(
    project: Project, own_redis: OwnRedisFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_STATE_DIR", project.root.env["CONVEYOR_STATE_DIR"])  # the servers register there
    first, second = (own_redis(data_dir=tmp_path / name / ".conveyor") for name in ("one", "two"))
    refused = await project.outside.arun("add", "background", "echo", "{}")
    assert refused.returncode == 3
    assert str(first.data_dir) in refused.stderr
    assert str(second.data_dir) in refused.stderr
    assert "--data-dir" in refused.stderr

    chosen = await project.outside.arun("--data-dir", str(second.data_dir), "add", "background", "echo", "{}")
    assert chosen.returncode == 0, chosen.stderr
    app = Conveyor(load_settings(redis_url=second.url))
    async with app:
        assert await app.queue("background").state_of(chosen.stdout.strip()) is not JobState.UNKNOWN


def test_app_module_in_the_current_folder_is_imported_without_pythonpath(project: Project, redis_url: str) -> None:
    (project.outside.cwd / "myapp.py").write_text(
        "from conveyor import Conveyor\n\napp = Conveyor()\n\n\n"
        "@app.handler('background', 'hello')\nasync def hello(payload: dict) -> str:\n    return 'hi'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "CONVEYOR_", "PYTHONPATH"))}
    script = Path(sys.executable).parent / "conveyor"  # the installed command: no cwd on sys.path of its own
    result = subprocess.run(
        [str(script), "add", "--app", "myapp:app", "background", "hello", "{}"],
        env={**env, "REDIS_URL": redis_url},
        cwd=project.outside.cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
