"""Fixtures for CLI tests: the `conveyor` command in-process (CliRunner) and as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conveyor import Conveyor, load_settings
from conveyor.cli.main import cli
from tests.cli.sample_app import create_app
from tests.support import stop_processes, wait_until  # noqa: F401 (re-exported for the tests here)

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.cli.sample_app:create_app"


KEPT = ("CONVEYOR_STATE_DIR",)  # the test run's registry of embedded servers (see tests/conftest.py)


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without any Redis/Conveyor setting (but the test run's registry), plus `values`."""
    env = {k: v for k, v in os.environ.items() if k in KEPT or not k.startswith(("REDIS_", "CONVEYOR_"))}
    return {**env, "PYTHONPATH": str(ROOT), **values}


@dataclass
class Cli:
    """Runs `conveyor` with a fixed environment: in-process (`invoke`) or as a subprocess (`run`, `start`)."""

    env: dict[str, str]
    cwd: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)

    def invoke(self, *args: str, input: str | None = None) -> Result:
        """In-process, with CliRunner: fast, for commands that need no real process."""
        unset: dict[str, str | None] = {
            k: None for k in os.environ if k.startswith(("REDIS_", "CONVEYOR_")) and k not in KEPT
        }
        return CliRunner().invoke(cli, list(args), input=input, env={**unset, **self.env}, catch_exceptions=False)

    async def ainvoke(self, *args: str, input: str | None = None) -> Result:
        """`invoke` from an async test (in a thread: a command runs its own event loop)."""
        return await asyncio.to_thread(self.invoke, *args, input=input)

    def run(self, *args: str, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m conveyor ARGS` to completion."""
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args],
            env=clean_environment(**self.env),
            cwd=self.cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    async def arun(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`run` from an async test."""
        return await asyncio.to_thread(self.run, *args)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """`python -m conveyor ARGS` in the background, output in `log_of(proc)`; stopped after the test."""
        log = self.cwd / f"conveyor-{len(self.procs)}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args],
                env=clean_environment(**self.env),
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log
        return proc

    def output(self, proc: subprocess.Popen[str]) -> str:
        """What a background command printed so far (stdout and stderr)."""
        return self.logs[proc.pid].read_text()

    def stop_all(self) -> None:
        stop_processes(self.procs, 30)


@pytest.fixture
def conveyor_cli(redis_url: str, tmp_path: Path) -> Iterator[Cli]:
    """The `conveyor` command against the test's (empty) Redis, with the sample app and short timings."""
    env = {
        "REDIS_URL": redis_url,
        "CONVEYOR_APP": APP,
        "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
        "CONVEYOR_SHUTDOWN_GRACE_S": "1",
        "CONVEYOR_HEARTBEAT_S": "0.5",
        "CONVEYOR_API_PORT": "0",  # `up` serves the API too: any free port, so parallel runs never collide
    }
    runner = Cli(env, tmp_path)
    yield runner
    runner.stop_all()


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """The sample app connected to the test's Redis, to set up and check what the CLI does."""
    conveyor = create_app(load_settings(redis_url=redis_url))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()
