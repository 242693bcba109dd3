"""`conveyor worker` imports only what a worker needs: a user app's worker starts fast and stays small."""

from __future__ import annotations

from conveyor import Conveyor, JobState
from tests.cli.conftest import Cli, wait_until
from tests.cli.lean_app import HEAVY_MODULES
from tests.observability.scraping import http_scrape, value
from tests.support import free_port


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


async def test_worker_with_a_metrics_port_serves_what_it_ran(conveyor_cli: Cli, app: Conveyor) -> None:
    port = free_port()
    job_id = await app.add("background", "imported", {})
    args = ("--app", "tests.cli.lean_app:app", "--queues", "background", "--metrics-port", str(port))
    proc = conveyor_cli.start("worker", *args)
    await wait_until(lambda: _finished(app, job_id), timeout=30)
    samples = await http_scrape(f"http://127.0.0.1:{port}/metrics")
    labels = {"queue": "background", "job_type": "imported", "outcome": "completed"}
    assert value(samples, "conveyor_process_attempts_total", **labels) == 1, conveyor_cli.output(proc)
    assert value(samples, "conveyor_process_job_run_seconds_count", queue="background", job_type="imported") == 1


async def test_worker_leaves_what_it_made_at_start_out_of_garbage_collection(conveyor_cli: Cli, app: Conveyor) -> None:
    # Modules, the app and its settings live as long as the process: a full collection need not walk them.
    job_id = await app.add("background", "frozen", {})
    proc = conveyor_cli.start("worker", "--app", "tests.cli.lean_app:app", "--queues", "background")
    await wait_until(lambda: _finished(app, job_id), timeout=30)
    job = await app.queue("background").get_job(job_id)
    assert job.state is JobState.COMPLETED, conveyor_cli.output(proc)
    assert job.result > 10_000  # objects frozen at start-up
