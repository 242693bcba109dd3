"""`--tenant NAME` (or CONVEYOR_TENANT) makes add, jobs, job, stats, worker and the management commands act in that
tenant's namespace only; an unknown tenant is a usage error (exit 2) and nothing is written."""

from __future__ import annotations

import json
import signal

import pytest

from conveyor import Conveyor, JobState
from conveyor.api.tokens import TokenStore
from conveyor.app.tenants import TenantConveyor
from conveyor.queue.tenants import TenantStore
from tests.cli.conftest import Cli, wait_until


@pytest.fixture
async def acme(app: Conveyor) -> TenantConveyor:
    """Tenant `acme`, created the way `conveyor tenant create acme` does."""
    await TenantStore(app.client, app.settings.conveyor_prefix).save("acme")
    return TenantConveyor(app, "acme")


async def _add(cli: Cli, *options: str) -> str:
    added = await cli.arun("add", "background", "echo", '{"n": 1}', *options)
    assert added.returncode == 0, added.stderr
    return added.stdout.strip()


async def test_add_jobs_and_stats_with_tenant_touch_only_the_tenants_queues(
    conveyor_cli: Cli, app: Conveyor, acme: TenantConveyor
) -> None:
    job_id = await _add(conveyor_cli, "--tenant", "acme")
    assert await acme.queue("background").state_of(job_id) is not JobState.UNKNOWN
    assert (await app.queue("background").counts()).pending == 0

    theirs = json.loads((await conveyor_cli.arun("jobs", "background", "--tenant", "acme", "--json")).stdout)
    ours = json.loads((await conveyor_cli.arun("jobs", "background", "--json")).stdout)
    assert ([job["id"] for job in theirs], ours) == ([job_id], [])
    shown = await conveyor_cli.arun("job", "background", job_id, "--tenant", "acme", "--json")
    assert json.loads(shown.stdout)["id"] == job_id
    assert (await conveyor_cli.arun("job", "background", job_id)).returncode == 1  # not in the main queues

    stats = json.loads((await conveyor_cli.arun("stats", "--tenant", "acme", "--json")).stdout)
    main_stats = json.loads((await conveyor_cli.arun("stats", "--json")).stdout)
    assert stats["queues"]["background"]["waiting"] == 1
    assert main_stats["queues"]["background"]["waiting"] == 0


async def test_conveyor_tenant_variable_acts_like_the_option(
    conveyor_cli: Cli, app: Conveyor, acme: TenantConveyor
) -> None:
    conveyor_cli.env["CONVEYOR_TENANT"] = "acme"
    job_id = await _add(conveyor_cli)
    assert await acme.queue("background").state_of(job_id) is not JobState.UNKNOWN
    assert await app.queue("background").state_of(job_id) is JobState.UNKNOWN
    paused = await conveyor_cli.arun("pause", "background")
    assert paused.returncode == 0, paused.stderr
    assert (await acme.queue("background").counts()).paused
    assert not (await app.queue("background").counts()).paused


async def test_an_unknown_tenant_is_a_usage_error_and_nothing_is_written(conveyor_cli: Cli, app: Conveyor) -> None:
    for command in (["add", "background", "echo", "{}"], ["stats"], ["pause", "background"]):
        refused = await conveyor_cli.arun(*command, "--tenant", "nobody")
        assert refused.returncode == 2, refused.stderr
        assert "Unknown tenant 'nobody'" in refused.stderr
    assert await app.client.keys("*") == []


async def test_a_worker_with_tenant_runs_only_the_tenants_jobs(
    conveyor_cli: Cli, app: Conveyor, acme: TenantConveyor
) -> None:
    theirs = await _add(conveyor_cli, "--tenant", "acme")
    ours = await _add(conveyor_cli)
    worker = conveyor_cli.start("worker", "--queues", "background", "--tenant", "acme")
    await wait_until(lambda: _completed(acme, theirs), timeout=30)
    assert "serving tenant acme" in conveyor_cli.output(worker)
    assert await app.queue("background").state_of(ours) is not JobState.COMPLETED
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, conveyor_cli.output(worker)


async def _completed(app: Conveyor, job_id: str) -> bool:
    return await app.queue("background").state_of(job_id) is JobState.COMPLETED


async def test_token_create_with_tenant_scopes_the_token_to_the_tenant(
    conveyor_cli: Cli, app: Conveyor, acme: TenantConveyor
) -> None:
    created = await conveyor_cli.arun("token", "create", "--name", "ci", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    (info,) = await TokenStore(app.client, app.settings.conveyor_prefix).list()
    assert (info.name, info.tenant) == ("ci", "acme")
    listed = await conveyor_cli.arun("token", "list", "--tenant", "acme")
    assert "tenant acme" in listed.stdout
    assert (await conveyor_cli.arun("token", "create", "--name", "x", "--tenant", "nobody")).returncode == 2
