"""Node interop: jobs cross between Node BullMQ and Conveyor in both directions.

Needs Node and npm: `tests/queue/node/package-lock.json` (the pinned `bullmq` and every package under it) is
installed with `npm ci` into a temporary directory once per session.
Skipped, with the reason, when npm is missing or the install fails (offline).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conveyor import Conveyor, JobState
from tests.queue.conftest import QUEUE, running, state_is, wait_until

NODE_DIR = Path(__file__).parent / "node"
INSTALL_TIMEOUT_S = 180


@pytest.fixture(scope="session")
def node_bullmq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the Node scripts and their installed `node_modules`."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node interop needs node and npm on PATH")
    workdir = tmp_path_factory.mktemp("node-bullmq")
    for script in NODE_DIR.iterdir():
        if script.is_file():
            shutil.copy(script, workdir / script.name)
    try:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=workdir, check=True, capture_output=True, timeout=INSTALL_TIMEOUT_S,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"npm could not install bullmq (offline?): {stderr.decode(errors='replace')[-300:]}")
    return workdir


def run_node(workdir: Path, redis_url: str, *args: str) -> str:
    node = shutil.which("node") or "node"
    result = subprocess.run(
        [node, *args], cwd=workdir, env={**os.environ, "REDIS_URL": redis_url},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


async def test_a_job_added_by_node_bullmq_is_processed_by_our_worker(
    app: Conveyor, redis_url: str, node_bullmq: Path
) -> None:
    job_id = run_node(node_bullmq, redis_url, "add.mjs", QUEUE, "ok", json.dumps({"filePath": "src/a.ts"}))
    queue = app.queue(QUEUE)
    assert (await queue.get_job(job_id)).data == {"filePath": "src/a.ts"}
    async with running(app.worker([QUEUE])):
        await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED))
    job = await queue.get_job(job_id)
    assert (job.type, job.result) == ("ok", {"filePath": "src/a.ts"})


async def test_a_node_bullmq_worker_processes_a_job_we_add(app: Conveyor, redis_url: str, node_bullmq: Path) -> None:
    job_id = await app.add(QUEUE, "summarize", {"text": "héllo"}, priority="high")
    printed = json.loads(run_node(node_bullmq, redis_url, "work.mjs", QUEUE))
    assert printed == {"id": job_id, "name": "summarize", "data": {"text": "héllo"}}
    job = await app.queue(QUEUE).get_job(job_id)
    assert job.state is JobState.COMPLETED
    assert job.result == {"node": True, "name": "summarize", "data": {"text": "héllo"}}
