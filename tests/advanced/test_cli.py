"""`conveyor dlq`, `conveyor schedule` and `conveyor tenant`, run in-process against the test's Redis."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from conveyor import Conveyor
from conveyor.app.tenants import TenantConveyor
from conveyor.cli.dlq_commands import dlq_cli
from conveyor.cli.schedule_commands import schedule_cli
from conveyor.cli.tenant_commands import tenant_cli
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore
from tests.advanced.conftest import advanced, running, wait_until

# Until `conveyor.cli.main` mounts them, the commands run under a root app of their own.
root = typer.Typer()
root.add_typer(dlq_cli, name="dlq")
root.add_typer(schedule_cli, name="schedule")
root.add_typer(tenant_cli, name="tenant")


@pytest.fixture
def conveyor(redis_url: str, tmp_path: Path) -> CliRunnerEnv:
    return CliRunnerEnv(
        {
            "REDIS_URL": redis_url,
            "CONVEYOR_APP": "tests.advanced.cli_app:create_app",
            "CONVEYOR_DATA_DIR": str(tmp_path),
        }
    )


class CliRunnerEnv:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str) -> Result:
        """Run a command from a sync test."""
        return CliRunner().invoke(root, list(args), env=self.env, catch_exceptions=False)

    async def run(self, *args: str) -> Result:
        """Run a command from an async test (in a thread: a command runs its own event loop)."""
        return await asyncio.to_thread(self, *args)


async def letters(app: Conveyor, *reasons: str, namespace: Conveyor | None = None) -> list[str]:
    where = namespace or app
    worker, _, _ = advanced(where.worker(["background"]))
    dlq = DeadLetters.of(where, "background")
    async with running(worker):
        ids = [await where.add("background", "fail", {"reason": reason}) for reason in reasons]
        await wait_until(lambda: _count(dlq, len(ids)))
    return ids


async def _count(dlq: DeadLetters, expected: int) -> bool:
    return await dlq.count() == expected


async def test_dlq_list_and_show(app: Conveyor, conveyor: CliRunnerEnv) -> None:
    first, second = await letters(app, "disk full", "timeout")
    wide = CliRunnerEnv({**conveyor.env, "COLUMNS": "120"})  # a 32-character id and the reason on one line
    listed = await wide.run("dlq", "list", "background")
    assert listed.exit_code == 0, listed.output
    assert first in listed.output
    assert "RuntimeError: timeout" in listed.output
    data = json.loads((await conveyor.run("dlq", "list", "background", "--search", "disk", "--json")).output)
    assert (data["total"], [letter["job_id"] for letter in data["letters"]]) == (2, [first])
    shown = await conveyor.run("dlq", "show", "background", second)
    assert shown.exit_code == 0
    assert "Last stack trace" in shown.output
    assert '"reason": "timeout"' in shown.output
    missing = await conveyor.run("dlq", "show", "background", "nope")
    assert missing.exit_code == 1
    assert "No dead letter" in missing.output


async def test_dlq_replay_previews_asks_then_replays(app: Conveyor, conveyor: CliRunnerEnv) -> None:
    await letters(app, "a", "b", "c")
    preview = await conveyor.run("dlq", "replay", "background", "--all", "--dry-run")
    assert "3 dead letter(s) of background would be replayed" in preview.output
    no_tty = await conveyor.run("dlq", "replay", "background", "--search", "a")
    assert no_tty.exit_code == 2
    assert "--yes" in no_tty.output
    done = await conveyor.run("dlq", "replay", "background", "--all", "--yes")
    assert done.exit_code == 0, done.output
    assert "Replayed 3 of 3" in done.output
    assert (await app.queue("background").counts()).pending == 3
    assert await DeadLetters.of(app, "background").count() == 0


async def test_dlq_replay_and_purge_by_id(app: Conveyor, conveyor: CliRunnerEnv) -> None:
    first, second = await letters(app, "x", "y")
    replayed = await conveyor.run("dlq", "replay", "background", first)
    assert replayed.exit_code == 0
    assert f"{first}-r" in replayed.output
    purged = await conveyor.run("dlq", "purge", "background", second)
    assert "Deleted 1 dead letter(s)" in purged.output
    assert await DeadLetters.of(app, "background").count() == 0


def test_dlq_replay_needs_a_selection(conveyor: CliRunnerEnv) -> None:
    assert conveyor("dlq", "replay", "background").exit_code == 2
    assert conveyor("dlq", "purge", "background", "1", "--all").exit_code == 2
    assert conveyor("dlq", "list", "nope").exit_code == 2


async def test_schedule_add_is_idempotent_and_list_and_remove_work(app: Conveyor, conveyor: CliRunnerEnv) -> None:
    args = ["schedule", "add", "nightly", "--queue", "background", "--type", "ok", "--cron", "0 0 3 * * *"]
    first = await conveyor.run(*args, "--tz", "Europe/Paris", "--data", '{"full": true}', "--json")
    assert first.exit_code == 0, first.output
    again = await conveyor.run(*args, "--tz", "Europe/Paris", "--data", '{"full": true}', "--json")
    assert json.loads(again.stdout) == json.loads(first.stdout)  # stderr: no live worker handles "ok"
    listed = json.loads((await conveyor.run("schedule", "list", "--json")).output)
    assert [(s["key"], s["cron"], s["tz"], s["data"]) for s in listed] == [
        ("nightly", "0 0 3 * * *", "Europe/Paris", {"full": True})
    ]
    assert "nightly" in (await conveyor.run("schedule", "list")).output
    assert (await conveyor.run("schedule", "remove", "nightly")).exit_code == 0
    assert (await conveyor.run("schedule", "remove", "nightly")).exit_code == 1
    assert await Schedules.of(app).all() == []


def test_schedule_add_refuses_bad_input(conveyor: CliRunnerEnv) -> None:
    base = ["schedule", "add", "k", "--queue", "background", "--type", "ok"]
    assert conveyor(*base).exit_code == 2  # neither --cron nor --every-ms
    bad_cron = conveyor(*base, "--cron", "whenever")
    assert bad_cron.exit_code == 2
    assert "cron" in bad_cron.output
    assert conveyor(*base, "--every-ms", "1000", "--tz", "Nowhere/City").exit_code == 2
    assert conveyor(*base, "--every-ms", "1000", "--catch-up", "twice").exit_code == 2


async def test_tenant_commands_and_the_tenant_option(app: Conveyor, conveyor: CliRunnerEnv) -> None:
    created = await conveyor.run("tenant", "create", "acme", "--max-waiting", "10", "--rate", "5", "--per-ms", "1000")
    assert created.exit_code == 0, created.output
    assert "bull:t:acme" in created.output
    shown = json.loads((await conveyor.run("tenant", "show", "acme", "--json")).output)
    assert shown["quotas"] == {
        "max_waiting_jobs": 10,
        "max_payload_bytes": None,
        "rate_limit": {"max": 5, "duration_ms": 1000},
    }
    acme = TenantConveyor(app, "acme")
    (own,) = await letters(app, "acme's", namespace=acme)
    assert json.loads((await conveyor.run("dlq", "list", "background", "--json")).output)["total"] == 0
    theirs = json.loads((await conveyor.run("dlq", "list", "background", "--tenant", "acme", "--json")).output)
    assert [letter["job_id"] for letter in theirs["letters"]] == [own]
    await conveyor.run(
        "schedule", "add", "t", "--queue", "background", "--type", "ok", "--every-ms", "60000", "--tenant", "acme"
    )
    assert [s.key for s in await Schedules.of(acme).all()] == ["t"]
    assert await Schedules.of(app).all() == []
    assert (await conveyor.run("dlq", "list", "background", "--tenant", "Bad Id")).exit_code == 2
    assert [t["id"] for t in json.loads((await conveyor.run("tenant", "list", "--json")).output)] == ["acme"]
    assert (await conveyor.run("tenant", "remove", "acme")).exit_code == 0
    assert (await conveyor.run("tenant", "remove", "acme")).exit_code == 1
    assert await TenantStore(app.client, "bull").all() == []
