"""Every example of the README, run against a live `conveyor up` (a subprocess on its embedded Redis, a data
dir of its own and a free port), from a small project folder.

Shell commands run one by one in README order and must exit 0 (some must also print what the README says);
the Python snippets run in order in one namespace (`readme_snippets`); the GraphQL blocks run against the
API of `up`. A command the test cannot run is listed in `SKIPPED` with the reason, so a new README command
is covered unless it is deliberately excluded here, and an exclusion the README no longer has fails too.
As in the README, a command may rely on the ones before it (a tenant created first): run the module whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, OperationType, parse, print_ast
from websockets.asyncio.client import connect

from tests.cli.conftest import ROOT, clean_environment
from tests.cli.readme import Example, blocks, commands, without_comment
from tests.support import stop_processes, wait_until

SKIPPED = {
    "python3 bootstrap.py up": "builds .venv and runs `conveyor up`: the test runs `conveyor up` itself",
    "python3 bootstrap.py test": "runs the whole suite, this test included",
    "conveyor up": "runs until stopped: the test starts it (own data dir, free port) before every other command",
    "conveyor stats --watch": "refreshes until Ctrl-C (`conveyor stats` without --watch is tested elsewhere)",
    "conveyor index . --watch": "watches files until Ctrl-C (tests/indexer/test_watch.py covers the watcher)",
    "open http://127.0.0.1:8000/": "opens a browser: the test GETs the dashboard of its `up` instead",
    "REDIS_CLUSTER_NODES=10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000 REDIS_PASSWORD=… conveyor worker": (
        "needs a Redis Cluster at those addresses: tests/cluster/ runs workers against one the tests start"
    ),
}
# What a command must print besides exiting 0, by the start of the command.
EXPECTED = {
    "conveyor add indexing": re.compile(r"^[0-9a-f]{32}$", re.MULTILINE),
    "conveyor token create": re.compile(r"^cvy_"),
    "conveyor token list": re.compile(r"dashboard .* viewer"),
    "conveyor index .": re.compile(r"Indexed 2 file"),
    'conveyor search "parse config"': re.compile(r"src/app\.py:1"),
    "conveyor ai summarize": re.compile(r"1 done, 0 failed"),
    "conveyor ai show": re.compile(r"app\.py"),
    "conveyor dlq show indexing": re.compile(r"no-such-type"),
    "conveyor schedule list": re.compile(r"prune-jobs"),
    "conveyor tenant list": re.compile(r"acme"),
}
PROJECT_FILES = {
    "src/app.py": 'def parse_config(path):\n    """Parse the config file."""\n    return {}\n',
    "README.md": "# A project\n",
}


@dataclass
class Deployment:
    """A running `conveyor up` and the environment its commands use."""

    env: dict[str, str]
    project: Path
    port: int
    proc: subprocess.Popen[str]

    def run(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A README command in the project folder, through bash (the README's quoting), `conveyor` on PATH."""
        return subprocess.run(
            ["bash", "-c", command], env=self.env, cwd=self.project, capture_output=True, text=True, timeout=timeout
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("readme")
    project = base / "project"
    for name, content in PROJECT_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content)
    port = _free_port()
    env = clean_environment(
        CONVEYOR_DATA_DIR=str(base / "data"),
        CONVEYOR_API_PORT=str(port),
        CONVEYOR_SHUTDOWN_GRACE_S="1",
        CONVEYOR_HEARTBEAT_S="0.5",
        CONVEYOR_UNKNOWN_TYPE_GRACE_S="0.5",  # jobs of a type nobody handles become dead letters quickly
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    log = (base / "up.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor", "up"], env=env, cwd=project, stdout=log, stderr=subprocess.STDOUT, text=True
    )
    up = Deployment(env, project, port, proc)
    try:
        asyncio.run(wait_until(lambda: _healthy(port), timeout=60, interval=0.2))
        _make_dead_letters(up)
        yield up
    finally:
        stop_processes([proc])
        log.close()


async def _healthy(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


def _make_dead_letters(up: Deployment) -> None:
    """Two dead letters in `indexing` for the README's `dlq` commands (a type no worker handles fails fast)."""
    for _ in range(2):
        assert up.run("conveyor add indexing no-such-type '{}'").returncode == 0

    async def two() -> bool:
        return len(_letter_ids(up)) >= 2

    asyncio.run(wait_until(two, timeout=30, interval=0.2))


def _letter_ids(up: Deployment) -> list[str]:
    """The ids of the dead letters `_make_dead_letters` made (other README jobs may fail into the store too)."""
    listed = up.run("conveyor dlq list indexing --type no-such-type --json")
    return [letter["job_id"] for letter in json.loads(listed.stdout)["letters"]]


def _substituted(up: Deployment, command: str) -> str:
    """The command with its placeholders (`<job-id>`, `<token-id>`) replaced by ids of the deployment."""
    if "<job-id" in command:
        letters = _letter_ids(up)
        command = command.replace("<job-id-2>", letters[1]).replace("<job-id>", letters[0])
    if "<token-id>" in command:
        up.run("conveyor token create --name to-revoke")
        tokens = json.loads(up.run("conveyor token list --json").stdout)
        command = command.replace("<token-id>", next(t["id"] for t in tokens if t["name"] == "to-revoke"))
    return command


def test_every_skipped_command_is_still_in_the_readme() -> None:
    in_readme = {without_comment(example.text) for example in commands()}
    assert set(SKIPPED) <= in_readme, set(SKIPPED) - in_readme


@pytest.mark.parametrize("example", commands(), ids=str)
def test_readme_command(deployment: Deployment, example: Example) -> None:
    command = without_comment(example.text)
    if command in SKIPPED:
        pytest.skip(SKIPPED[command])
    result = deployment.run(_substituted(deployment, command))
    assert result.returncode == 0, f"{example}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    expected = next((pattern for start, pattern in EXPECTED.items() if command.startswith(start)), None)
    if expected is not None:
        assert expected.search(result.stdout), f"{example}: {expected.pattern!r} not in\n{result.stdout}"


def test_the_dashboard_the_readme_opens_is_served(deployment: Deployment) -> None:
    page = httpx.get(f"http://127.0.0.1:{deployment.port}/")
    assert page.status_code == 200
    assert "<html" in page.text.lower()


def test_readme_python_snippets(deployment: Deployment) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.cli.readme_snippets"],
        env=deployment.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    reported = {int(line.split(":")[1]) for line in result.stdout.splitlines() if line.startswith(("ran", "skipped"))}
    assert reported == {snippet.line for snippet in blocks("python")}, result.stdout


@pytest.mark.parametrize("example", blocks("graphql"), ids=str)
async def test_readme_graphql_block(deployment: Deployment, example: Example) -> None:
    text = example.text
    if '"<job-id>"' in text:
        queue = re.search(r'queue: "([\w.-]+)"', text)
        assert queue is not None, text
        text = text.replace('"<job-id>"', json.dumps(await _a_job_id(deployment, queue.group(1))))
    for definition in parse(text).definitions:
        assert isinstance(definition, OperationDefinitionNode)
        operation = print_ast(definition)
        if definition.operation is OperationType.SUBSCRIPTION:
            result = await _first_event(deployment.port, operation)
        else:
            async with httpx.AsyncClient(timeout=30) as http:  # loopback: the embedded dev default needs no token
                response = await http.post(f"http://127.0.0.1:{deployment.port}/graphql", json={"query": operation})
            result = response.json()
        assert "errors" not in result, f"{example}\n{operation}\n{result}"
        assert all(value is not None for value in result["data"].values()), result


JOB_OF_QUEUE = {
    "indexing": """index-file '{"filePath": "src/app.py"}'""",
    "background": """cleanup-temp-files '{"dry_run": true}'""",
}


async def _a_job_id(up: Deployment, queue: str) -> str:
    added = await asyncio.to_thread(up.run, f"conveyor add {queue} {JOB_OF_QUEUE[queue]}")
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


async def _first_event(port: int, operation: str) -> dict[str, Any]:
    async with _ws(port) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": operation}}))
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 15))
    assert message["type"] == "next", message
    payload: dict[str, Any] = message["payload"]
    return payload


@asynccontextmanager
async def _ws(port: int) -> AsyncIterator[Any]:
    """An initialised graphql-transport-ws connection to the API of `up` (loopback: no token)."""
    url = f"ws://127.0.0.1:{port}/graphql"
    async with connect(url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert ack["type"] == "connection_ack", ack
        yield ws
