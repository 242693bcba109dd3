"""Job types and the CLI: `add` warns about a type no live worker handles; `worker --app` serves the app's queues."""

from __future__ import annotations

import asyncio
import json

from conveyor import Conveyor, JobState, NewJob
from tests.cli.conftest import Cli, wait_until

BACKGROUND_APP = "tests.cli.background_app:create_app"


async def _live_workers(app: Conveyor, count: int) -> bool:
    return len(await app.workers()) == count


async def test_add_of_a_type_no_live_worker_handles_exits_0_and_warns_on_stderr(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    added = await conveyor_cli.arun("add", "background", "no-such-type", "{}")
    assert added.returncode == 0, added.stderr
    job_id = added.stdout.strip()
    assert await app.queue("background").state_of(job_id) in (JobState.WAITING, JobState.PRIORITIZED)  # added
    assert "Warning: No live worker handles job type 'no-such-type' on queue 'background'" in added.stderr
    assert "UnknownJobTypeError after 30 s" in added.stderr


async def test_add_warns_only_about_types_no_live_worker_handles(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    served = await conveyor_cli.arun("add", "background", "echo", "{}")
    unserved = await conveyor_cli.arun("add", "background", "ecko", "{}")
    assert (served.returncode, unserved.returncode) == (0, 0), unserved.stderr
    assert served.stderr == ""
    assert "job type 'ecko' on queue 'background'" in unserved.stderr


async def test_a_worker_says_it_serves_only_once_an_add_finds_it_live(conveyor_cli: Cli, app: Conveyor) -> None:
    # A script that starts `conveyor worker`, waits for its banner, then adds a job must get no "no live worker"
    # warning, however slow the machine: the first heartbeat is written before the banner.
    for _ in range(3):
        proc = conveyor_cli.start("worker", "--queues", "background")
        await wait_until(lambda: " serving " in conveyor_cli.output(proc), timeout=30)  # noqa: B023
        added = await conveyor_cli.arun("add", "background", "echo", "{}")
        assert (added.returncode, added.stderr) == (0, "")
        proc.terminate()
        assert await asyncio.to_thread(proc.wait, 30) == 0
        await wait_until(lambda: _live_workers(app, 0), timeout=30)


async def test_worker_of_an_app_with_only_a_background_handler_serves_only_background(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    proc = conveyor_cli.start("worker", "--app", BACKGROUND_APP)
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    (info,) = await app.workers()
    assert info.queues == {"background": 2}
    assert info.job_types == {"background": ["send-email"]}
    # The banner's last line: the worker's own "serving" log line comes before the banner, and under load the
    # output may be read between the two.
    await wait_until(lambda: "Stop with" in conveyor_cli.output(proc), timeout=10)
    banner = conveyor_cli.output(proc)
    assert "serving background (2)" in banner
    assert "indexing" not in banner
    assert "ai-processing" not in banner


async def test_jobs_of_a_user_app_beside_the_standard_worker_all_run_on_the_user_worker(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    conveyor_cli.start("worker")  # the standard worker `conveyor up` runs: it serves `background` too
    conveyor_cli.start("worker", "--app", BACKGROUND_APP)
    await wait_until(lambda: _live_workers(app, 2), timeout=30)
    ids = await app.add_bulk("background", [NewJob("send-email", {"to": f"user{n}"}) for n in range(8)])
    queue = app.queue("background")

    async def finished() -> bool:
        counts = await queue.counts()
        return counts.completed + counts.failed == 8

    await wait_until(finished, timeout=60)
    assert (await queue.counts()).failed == 0
    results = [(await queue.get_job(job_id)).result for job_id in ids]
    assert results == ["sent"] * 8


async def test_schedule_add_of_a_type_no_live_worker_handles_saves_it_and_warns_naming_the_type(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    added = await conveyor_cli.arun(
        "schedule", "add", "beat", "--queue", "background", "--type", "ping", "--every-ms", "60000"
    )
    assert added.returncode == 0, added.stderr
    assert "Warning: No live worker handles job type 'ping' on queue 'background'" in added.stderr
    listed = await conveyor_cli.arun("schedule", "list", "--json")
    assert [schedule["key"] for schedule in json.loads(listed.stdout)] == ["beat"]


async def test_schedule_add_of_a_type_a_live_worker_handles_does_not_warn(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.start("worker", "--queues", "background")
    await wait_until(lambda: _live_workers(app, 1), timeout=30)
    added = await conveyor_cli.arun(
        "schedule", "add", "prune", "--queue", "background", "--type", "remove-old-jobs", "--data", "{}",
        "--every-ms", "3600000",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Warning" not in added.stderr
