"""`conveyor worker` imports only what a worker needs: a user app's worker starts fast and stays small."""

from __future__ import annotations

from conveyor import Conveyor, JobState
from tests.cli.conftest import Cli, wait_until
from tests.cli.lean_app import HEAVY_MODULES


async def _finished(app: Conveyor, job_id: str) -> bool:
    return await app.queue("background").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


async def test_worker_of_a_user_app_imports_no_api_dashboard_indexer_ai_or_embedding_modules(
    conveyor_cli: Cli, app: Conveyor
) -> None:
    # The job reports what the worker process has imported by the time it runs one: everything at start-up
    # (CLI, app, observability, the worker itself) and on the way to a job is done by then.
    job_id = await app.add("background", "imported", {})
    proc = conveyor_cli.start("worker", "--app", "tests.cli.lean_app:app", "--queues", "background")
    await wait_until(lambda: _finished(app, job_id), timeout=30)
    job = await app.queue("background").get_job(job_id)
    assert job.state is JobState.COMPLETED, conveyor_cli.output(proc)
    assert job.result == [], f"conveyor worker imported {job.result} (none of {HEAVY_MODULES} is needed)"
