"""`conveyor up` with no Redis configured: runs the embedded server and a worker, and jobs survive restarts."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from conveyor import Conveyor, JobState, load_settings
from tests.cli.conftest import APP, Cli, wait_until


@pytest.fixture
def embedded_cli(tmp_path: Path) -> Iterator[Cli]:
    """`conveyor` with a data dir of its own and no REDIS_* variables: the embedded server is used."""
    env = {
        "CONVEYOR_APP": APP,
        "CONVEYOR_DATA_DIR": str(tmp_path / "data"),
        "CONVEYOR_SHUTDOWN_GRACE_S": "1",
        "CONVEYOR_HEARTBEAT_S": "0.5",
        "CONVEYOR_API_PORT": "0",  # `up` serves the API too: any free port
    }
    runner = Cli(env, tmp_path)
    yield runner
    runner.stop_all()


@pytest.fixture
async def attached(embedded_cli: Cli) -> AsyncIterator[Conveyor]:
    """An app for the test's own checks, attached to the embedded server (never starting one)."""
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    app = Conveyor(load_settings(redis_url=None, redis_host=None, redis_sentinels=None, conveyor_data_dir=data_dir))
    yield app
    await app.close()


async def _start_up(cli: Cli) -> subprocess.Popen[str]:
    proc = cli.start("up")
    await wait_until(lambda: "Redis:" in cli.output(proc) or proc.poll() is not None, timeout=30)
    assert proc.poll() is None, cli.output(proc)
    return proc


async def _stop(cli: Cli, proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.to_thread(proc.wait, 30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running 30 s after SIGTERM:\n{cli.output(proc)}") from None
    assert code == 0, cli.output(proc)


async def _job(cli: Cli, job_id: str) -> dict[str, object]:
    shown = await cli.arun("job", "background", job_id, "--json")
    assert shown.returncode == 0, shown.stderr
    job: dict[str, object] = json.loads(shown.stdout)
    return job


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_up_runs_the_embedded_redis_and_jobs_survive_a_restart(embedded_cli: Cli, attached: Conveyor) -> None:
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    up = await _start_up(embedded_cli)
    output = embedded_cli.output(up)
    assert "started by this process" in output
    assert (data_dir / "redis.password").read_text().strip() not in output  # the password is masked
    redis_pid = json.loads((data_dir / "redis.json").read_text())["pid"]

    done = (await embedded_cli.arun("add", "background", "echo", '{"n": 1}')).stdout.strip()
    later = (await embedded_cli.arun("add", "background", "echo", '{"n": 2}', "--delay-ms", "3600000")).stdout.strip()
    await attached.connect()
    assert attached.embedded is not None
    assert not attached.embedded.owner  # `add` and this test attached to the server `up` started
    await wait_until(lambda: _state_is(attached, done, JobState.COMPLETED))
    await attached.close()

    await _stop(embedded_cli, up)
    assert not _alive(redis_pid)
    assert not (data_dir / "redis.json").exists()

    again = await _start_up(embedded_cli)
    assert "started by this process" in embedded_cli.output(again)
    first = await _job(embedded_cli, done)
    assert (first["state"], first["result"]) == ("completed", {"n": 1})
    assert (await _job(embedded_cli, later))["state"] == "delayed"
    promoted = await embedded_cli.arun("promote", "background", later)
    assert promoted.returncode == 0, promoted.stderr
    await wait_until(lambda: _completed(embedded_cli, later), timeout=30, interval=0.3)
    await _stop(embedded_cli, again)


async def _state_is(app: Conveyor, job_id: str, state: JobState) -> bool:
    return await app.queue("background").state_of(job_id) is state


async def _completed(cli: Cli, job_id: str) -> bool:
    return (await _job(cli, job_id))["state"] == "completed"


async def test_a_worker_attaches_to_the_redis_of_up_and_leaves_it_running(
    embedded_cli: Cli, attached: Conveyor
) -> None:
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    up = await _start_up(embedded_cli)
    redis_pid = json.loads((data_dir / "redis.json").read_text())["pid"]
    await attached.connect()
    worker = embedded_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(attached, 2), timeout=30)
    assert f"embedded, pid {redis_pid}, attached" in embedded_cli.output(worker)
    await _stop(embedded_cli, worker)
    assert _alive(redis_pid)
    job_id = await attached.add("background", "echo", {"n": 2})
    await wait_until(lambda: _state_is(attached, job_id, JobState.COMPLETED))  # `up` still has its Redis
    await attached.close()
    await _stop(embedded_cli, up)
    assert not _alive(redis_pid)


async def test_up_with_processes_supervises_workers_that_share_its_embedded_redis(
    embedded_cli: Cli, attached: Conveyor
) -> None:
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedded_cli.env["CONVEYOR_API_PORT"] = str(port)
    up = embedded_cli.start("up", "--processes", "2")
    await wait_until(lambda: (data_dir / "redis.json").exists(), timeout=30)
    redis_pid = json.loads((data_dir / "redis.json").read_text())["pid"]
    await attached.connect()
    await wait_until(lambda: _live_workers(attached, 2), timeout=60, interval=0.2)
    job_id = await attached.add("background", "echo", {"n": 3})
    await wait_until(lambda: _state_is(attached, job_id, JobState.COMPLETED))
    await attached.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        await wait_until(lambda: _healthy(http), timeout=20, interval=0.1)  # the API runs beside the supervisor
    await _stop(embedded_cli, up)
    assert not _alive(redis_pid)


async def _live_workers(app: Conveyor, count: int) -> bool:
    return len({worker.pid for worker in await app.workers()}) == count


async def test_up_serves_the_graphql_api_on_loopback(embedded_cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedded_cli.env["CONVEYOR_API_PORT"] = str(port)
    up = await _start_up(embedded_cli)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        await wait_until(lambda: _healthy(http), timeout=20, interval=0.1)
        added = await http.post(
            "/graphql",  # the embedded dev default: loopback needs no token
            json={"query": 'mutation { addJob(queueName: "background", type: "echo", data: {n: 3}) { id } }'},
        )
    job_id = added.json()["data"]["addJob"]["id"]
    await wait_until(lambda: _completed(embedded_cli, job_id), timeout=30, interval=0.3)
    await _stop(embedded_cli, up)


async def test_up_imports_the_api_server_before_its_worker_serves(embedded_cli: Cli) -> None:
    # Imported by the running API service, the server's stack held the event loop right after the worker had
    # announced itself: its heartbeats stopped for as long as the import took, seconds on a busy machine, long
    # enough to drop out of the live worker list (jobs added then warned that no worker handled their type).
    embedded_cli.env["PYTHONPROFILEIMPORTTIME"] = "1"  # each import's line on stderr, as it ends
    up = await _start_up(embedded_cli)
    imported = re.compile(r"^import time:.*\| conveyor\.api\.server$", re.MULTILINE)
    await wait_until(lambda: imported.search(embedded_cli.output(up)) is not None, timeout=30, interval=0.1)
    output = embedded_cli.output(up)
    server_imported = imported.search(output)
    assert server_imported is not None
    assert server_imported.start() < output.index("Conveyor is up"), output[-2000:]
    await _stop(embedded_cli, up)


async def _healthy(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_up_on_a_port_in_use_says_so_in_one_line_and_starts_nothing(embedded_cli: Cli) -> None:
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await embedded_cli.arun("up", "--port", str(port))
    assert result.returncode == 3, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Conveyor is up" not in result.stdout
    assert not (data_dir / "redis.json").exists()  # no embedded server was started (or left running)


async def test_up_serves_the_api_on_the_port_given_with_port(embedded_cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    up = embedded_cli.start("up", "--port", str(port))
    await wait_until(lambda: f"127.0.0.1:{port}/graphql" in embedded_cli.output(up), timeout=30)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        await wait_until(lambda: _healthy(http), timeout=20, interval=0.1)
    await _stop(embedded_cli, up)


@pytest.mark.parametrize("processes", ["1", "2"])
async def test_up_whose_api_cannot_bind_after_redis_started_stops_that_redis(embedded_cli: Cli, processes: str) -> None:
    # Port 0 skips the up-front port check, so the bind fails only in the API server, after Redis started:
    # 192.0.2.1 (TEST-NET-1) is never an address of this host.
    data_dir = Path(embedded_cli.env["CONVEYOR_DATA_DIR"])
    result = await embedded_cli.arun("up", "--host", "192.0.2.1", "--port", "0", "--processes", processes)
    assert result.returncode == 3, result.stderr
    started = re.search(r"embedded, pid (\d+), started by this process", result.stdout)
    assert started is not None, result.stdout  # Redis was started before the API failed
    assert not _alive(int(started.group(1)))
    assert not (data_dir / "redis.json").exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "could not start on 192.0.2.1:0" in errors[0]
    assert "Traceback" not in result.stderr
