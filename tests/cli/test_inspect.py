"""`conveyor jobs` and `conveyor stats`: pages of jobs, every queue's counts, live workers."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime

from rich.console import Console

from conveyor import Conveyor, JobState, NewJob
from conveyor.cli.render import render_workers
from conveyor.worker.registry import WorkerInfo
from tests.cli.conftest import Cli, wait_until


async def test_stats_json_counts_every_queue_and_the_paused_flag(conveyor_cli: Cli, app: Conveyor) -> None:
    await app.add_bulk("background", [NewJob("echo"), NewJob("echo")])
    await app.add("indexing", "echo", delay_ms=60_000)
    await app.queue("ai-processing").pause()

    result = await conveyor_cli.arun("stats", "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert set(stats["queues"]) == {"indexing", "ai-processing", "background"}
    background = stats["queues"]["background"]
    assert background["waiting"] == 2
    assert (background["active"], background["failed"], background["paused"]) == (0, 0, False)
    assert stats["queues"]["indexing"]["delayed"] == 1
    assert stats["queues"]["ai-processing"]["paused"] is True
    assert stats["workers"] == []


async def test_a_paused_queues_default_priority_jobs_are_waiting_in_stats_jobs_and_python(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    queue = app.queue("background")
    await queue.pause()
    ids = await app.add_bulk("background", [NewJob("echo", {"n": n}) for n in range(3)])  # default options

    stats = json.loads((await conveyor_cli.arun("stats", "--json")).stdout)["queues"]["background"]
    listed = json.loads((await conveyor_cli.ainvoke("jobs", "background", "-s", "waiting", "--json")).stdout)
    shown = json.loads((await conveyor_cli.ainvoke("job", "background", ids[0], "--json")).stdout)
    counts = await queue.counts()

    assert (stats["waiting"], stats["prioritized"], stats["paused_jobs"], stats["paused"]) == (3, 3, 3, True)
    assert [(job["id"], job["state"]) for job in listed] == [(job_id, "waiting") for job_id in ids]
    assert shown["state"] == "waiting"
    assert (counts.waiting, counts.prioritized, counts.paused_jobs, counts.pending) == (3, 3, 3, 3)
    assert [job.id for job in await queue.jobs(JobState.WAITING)] == ids
    table = (await conveyor_cli.ainvoke("stats")).stdout
    assert "prioritized" not in table.lower()
    row = next(line for line in table.splitlines() if "background" in line)
    assert [cell.strip() for cell in row.split("│") if cell.strip()][1] == "3"  # the Waiting column


async def test_stats_at_80_columns_shows_each_worker_name_whole(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.start("worker", "--queues", "background,ai-processing")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    (worker,) = await app.workers()
    conveyor_cli.env["COLUMNS"] = "80"
    shown = await conveyor_cli.arun("stats")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in shown.stdout
    assert worker.name in _first_column(lines[lines.index(next(x for x in lines if "Worker" in x)) :])
    assert "background 0/2" in shown.stdout  # queue, active jobs / slots


def test_worker_table_wraps_a_long_name_instead_of_cutting_it() -> None:
    now = datetime.now(UTC)
    name = "ip-172-31-22-100.eu-west-1.compute.internal:15104:6f2a9c"
    worker = WorkerInfo(
        id="w", name=name, host=name.split(":")[0], pid=15104, queues={"indexing": 5, "ai-processing": 3},
        active={"indexing": 2}, processed=1234, started_at=now, last_beat=now,
    )  # fmt: skip
    console = Console(width=80, record=True)
    console.print(render_workers([worker]))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert name in _first_column(lines)
    assert "Last beat" in lines[2]  # no column cut off


def _first_column(lines: list[str]) -> str:
    """The text of a table's first column, its wrapped lines joined."""
    return "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))


async def _live_workers(app: Conveyor, count: int) -> bool:
    return len(await app.workers()) == count


def test_stats_table_lists_queues(conveyor_cli: Cli) -> None:
    shown = conveyor_cli.invoke("stats")
    assert shown.exit_code == 0, shown.output
    for name in ("indexing", "ai-processing", "background", "no live workers"):
        assert name in shown.stdout


async def test_jobs_pages_through_a_queue_oldest_pending_first(conveyor_cli: Cli, app: Conveyor) -> None:
    ids = await app.add_bulk("background", [NewJob("echo", {"n": n}) for n in range(5)])
    page = await conveyor_cli.ainvoke("jobs", "background", "--limit", "2", "--offset", "1", "--json")
    assert [job["id"] for job in json.loads(page.stdout)] == ids[1:3]
    everything = json.loads((await conveyor_cli.ainvoke("jobs", "background", "--json")).stdout)
    assert [job["id"] for job in everything] == ids


async def test_jobs_filters_by_state_across_several_states(conveyor_cli: Cli, app: Conveyor) -> None:
    pending = await app.add("background", "echo")
    delayed = await app.add("background", "echo", delay_ms=60_000)
    listed = await conveyor_cli.ainvoke("jobs", "background", "--state", "delayed", "--json")
    assert [job["id"] for job in json.loads(listed.stdout)] == [delayed]
    both = await conveyor_cli.ainvoke(
        "jobs", "background", "-s", "delayed", "-s", "prioritized", "-s", "waiting", "--json"
    )
    assert {job["id"] for job in json.loads(both.stdout)} == {pending, delayed}


def test_jobs_with_an_unknown_state_is_a_usage_error(conveyor_cli: Cli) -> None:
    assert conveyor_cli.invoke("jobs", "background", "--state", "lost").exit_code == 2


async def test_stats_watch_refreshes_until_sigterm_then_exits_0(conveyor_cli: Cli, app: Conveyor) -> None:
    watch = conveyor_cli.start("stats", "--watch", "--json", "--interval", "0.1")
    await wait_until(lambda: len(conveyor_cli.output(watch).splitlines()) >= 2, timeout=30)
    await app.add("indexing", "echo", delay_ms=60_000)
    await wait_until(lambda: '"delayed": 1' in conveyor_cli.output(watch), timeout=30)
    watch.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(watch.wait, 30) == 0
    snapshots = [json.loads(line) for line in conveyor_cli.output(watch).splitlines()]
    assert snapshots[0]["queues"]["indexing"]["delayed"] == 0
    assert snapshots[-1]["queues"]["indexing"]["delayed"] == 1
