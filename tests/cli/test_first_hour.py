"""A new user's first hour (issue 16), end to end against `conveyor up` run as a subprocess, as the README tells it:
`up` in the project folder; jobs added from a folder outside it; the user's own worker app (`conveyor worker
--app myapp:app` from its folder) on `background` beside `up`'s standard worker; the design's use case 3; a
paused queue; a second `up` on the same port; a tenant. No job may be lost, run twice, run by the wrong worker
or fail. The user's handler writes every run to a ledger file, so runs are counted outside Redis.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.cli.conftest import Cli, wait_until

MYAPP = '''\
"""The user's own app: one job type on `background`, each run written to the ledger."""

import os

from conveyor import Conveyor, JobContext

app = Conveyor()


@app.handler("background", "send-email")
async def send_email(payload: dict, ctx: JobContext) -> str:
    with open(os.environ["LEDGER"], "a") as ledger:
        ledger.write(f"{ctx.job.id} {os.getpid()}\\n")
    return "sent"
'''
USE_CASE_3 = """mutation {
  addJob(
    queueName: "background"
    type: "cleanup-temp-files"
    data: { delay: 86400000 } # Run in 24 hours
  ) {
    id
  }
}"""


@dataclass
class Folders:
    """Where the user types: the project (`up`), a folder outside it, and their app's folder."""

    project: Cli
    elsewhere: Cli
    myapp: Cli
    ledger: Path
    port: int

    def runs(self) -> Counter[tuple[str, int]]:
        """(job id, pid of the process that ran it) -> how many times, from the ledger."""
        lines = self.ledger.read_text().split() if self.ledger.exists() else []
        return Counter((job_id, int(pid)) for job_id, pid in zip(lines[::2], lines[1::2], strict=True))


async def _json(cli: Cli, *args: str) -> Any:
    result = await cli.arun(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def _add(cli: Cli, *args: str) -> str:
    result = await cli.arun("add", *args)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning: a live worker handles the type
    return result.stdout.strip()


async def _add_bulk(cli: Cli, queue: str, jobs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = "".join(json.dumps({"type": job_type, "data": data}) + "\n" for job_type, data in jobs)
    result = await asyncio.to_thread(cli.run, "add", queue, "--bulk", "-", input=lines)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning: a live worker handles every type
    return result.stdout.split()


async def _completed(cli: Cli, queue: str, *tenant: str) -> dict[str, dict[str, Any]]:
    """The queue's completed jobs by id (one `conveyor jobs` call)."""
    listed = await _json(cli, "jobs", queue, "-s", "completed", "--limit", "1000", *tenant)
    return {job["id"]: job for job in listed}


async def _all_completed(cli: Cli, queue: str, ids: list[str], *tenant: str) -> bool:
    return set(ids) <= set(await _completed(cli, queue, *tenant))


async def _workers(cli: Cli) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = (await _json(cli, "stats"))["workers"]
    return workers


async def _started(cli: Cli, proc: subprocess.Popen[str], marker: str) -> None:
    await wait_until(lambda: marker in cli.output(proc) or proc.poll() is not None, timeout=60)
    assert proc.poll() is None, cli.output(proc)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _folders(tmp_path: Path) -> Folders:
    port = _free_port()
    ledger = tmp_path / "ledger.txt"
    env = {
        "CONVEYOR_STATE_DIR": str(tmp_path / "state"),  # this test's registry of running servers
        "CONVEYOR_API_PORT": str(port),
        "CONVEYOR_SHUTDOWN_GRACE_S": "1",
        "CONVEYOR_HEARTBEAT_S": "0.5",
        "LEDGER": str(ledger),
    }
    clis = []
    for name in ("project", "elsewhere", "myapp"):
        (tmp_path / name).mkdir()
        clis.append(Cli(env, tmp_path / name))
    (tmp_path / "project" / "src").mkdir()
    (tmp_path / "project" / "src" / "index.ts").write_text("export function main(): void {}\n")
    (tmp_path / "myapp" / "myapp.py").write_text(MYAPP)
    return Folders(*clis, ledger=ledger, port=port)


async def test_a_new_users_first_hour_loses_no_job_and_fails_none(tmp_path: Path) -> None:
    folders = _folders(tmp_path)
    project, elsewhere, myapp = folders.project, folders.elsewhere, folders.myapp
    try:
        await _first_hour(folders, project, elsewhere, myapp)
    finally:
        for cli in (project, elsewhere, myapp):
            cli.stop_all()


async def _first_hour(folders: Folders, project: Cli, elsewhere: Cli, myapp: Cli) -> None:
    up = project.start("up")
    await _started(project, up, "dashboard at")
    await _add_from_outside_the_project(elsewhere)
    user_worker = myapp.start("worker", "--app", "myapp:app")  # from its folder, no PYTHONPATH for it
    await _started(myapp, user_worker, "serving background")
    assert "indexing" not in myapp.output(user_worker)  # it serves only the queue its app has handlers for
    emails = await _user_worker_beside_ups_worker(folders, elsewhere, up.pid, user_worker.pid)
    await _use_case_3_is_delayed(folders, elsewhere)
    held = await _paused_queue_waiting_agrees(elsewhere)
    await _second_up_on_the_same_port(folders, project)
    assert up.poll() is None  # the first `up` keeps running
    acme_job, tenant_worker = await _tenant_jobs(elsewhere, myapp)

    # Nothing lost, nothing run twice or by the wrong worker, nothing failed.
    expected = {(job_id, user_worker.pid): 1 for job_id in emails + held} | {(acme_job, tenant_worker.pid): 1}
    assert folders.runs() == Counter(expected)
    for tenant in ((), ("--tenant", "acme")):
        queues = (await _json(elsewhere, "stats", *tenant))["queues"]
        assert {name: q["failed"] for name, q in queues.items()} == dict.fromkeys(queues, 0)
    assert re.search(r"embedded, pid \d+, started by this process", project.output(up))


async def _add_from_outside_the_project(elsewhere: Cli) -> None:
    """`add` from a folder outside the project reaches the running deployment: up's worker runs the job."""
    indexed = await _add(elsewhere, "indexing", "index-file", '{"filePath": "src/index.ts"}')
    await wait_until(lambda: _all_completed(elsewhere, "indexing", [indexed]), timeout=30, interval=0.3)
    assert not (elsewhere.cwd / ".conveyor").exists()  # no throwaway Redis was started there


async def _user_worker_beside_ups_worker(folders: Folders, elsewhere: Cli, up_pid: int, user_pid: int) -> list[str]:
    """The user's jobs run on the user's worker, the standard ones on up's: each once. Returns the user's."""
    await wait_until(lambda: _count_workers(elsewhere, 2), timeout=30, interval=0.3)
    (up_worker,) = [w for w in await _workers(elsewhere) if w["pid"] == up_pid]
    jobs = [("send-email", {"to": f"user{n}@example.com"}) for n in range(8)]
    ids = await _add_bulk(elsewhere, "background", jobs + [("cleanup-temp-files", {"dry_run": True})] * 4)
    emails, cleanups = ids[:8], ids[8:]
    await wait_until(lambda: _all_completed(elsewhere, "background", emails + cleanups), timeout=60, interval=0.3)
    assert folders.runs() == Counter({(job_id, user_pid): 1 for job_id in emails})
    completed = await _completed(elsewhere, "background")
    assert {completed[job_id]["worker"] for job_id in cleanups} == {up_worker["name"]}
    return emails


async def _use_case_3_is_delayed(folders: Folders, elsewhere: Cli) -> None:
    """The design's use case 3 as written: the cleanup runs in 24 h, so it reads as delayed."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{folders.port}", timeout=30) as http:
        added = (await http.post("/graphql", json={"query": USE_CASE_3})).json()
    assert "errors" not in added, added
    assert (await _json(elsewhere, "job", "background", added["data"]["addJob"]["id"]))["state"] == "delayed"


async def _paused_queue_waiting_agrees(elsewhere: Cli) -> list[str]:
    """While `background` is paused, stats and jobs agree on its waiting jobs; after resuming, they run."""
    assert (await elsewhere.arun("pause", "background")).returncode == 0
    held = await _add_bulk(elsewhere, "background", [("send-email", {"to": "later@example.com"})] * 3)
    counts = (await _json(elsewhere, "stats"))["queues"]["background"]
    waiting = await _json(elsewhere, "jobs", "background", "-s", "waiting")
    assert counts["waiting"] == len(waiting) == 3
    assert sorted(job["id"] for job in waiting) == sorted(held)
    assert {job["state"] for job in waiting} == {"waiting"}
    assert (await elsewhere.arun("resume", "background")).returncode == 0
    await wait_until(lambda: _all_completed(elsewhere, "background", held), timeout=60, interval=0.3)
    return held


async def _second_up_on_the_same_port(folders: Folders, project: Cli) -> None:
    """One line, exit 3, before anything starts."""
    second = await project.arun("up", "--port", str(folders.port))
    assert second.returncode == 3, second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert "Conveyor is up" not in second.stdout


async def _tenant_jobs(elsewhere: Cli, myapp: Cli) -> tuple[str, subprocess.Popen[str]]:
    """CONVEYOR_TENANT (or --tenant) on add, jobs, stats and worker; returns the tenant's job and worker."""
    assert (await elsewhere.arun("tenant", "create", "acme")).returncode == 0
    tenant_worker = myapp.start("worker", "--app", "myapp:app", "--tenant", "acme")
    await _started(myapp, tenant_worker, "serving tenant acme")
    acme = Cli({**elsewhere.env, "CONVEYOR_TENANT": "acme"}, elsewhere.cwd)
    acme_job = await _add(acme, "background", "send-email", '{"to": "acme@example.com"}')
    tenant = ("--tenant", "acme")
    await wait_until(lambda: _all_completed(elsewhere, "background", [acme_job], *tenant), timeout=60, interval=0.3)
    assert acme_job not in [job["id"] for job in await _json(elsewhere, "jobs", "background")]
    return acme_job, tenant_worker


async def _count_workers(cli: Cli, count: int) -> bool:
    return len(await _workers(cli)) == count
