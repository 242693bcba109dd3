"""`conveyor limits`: the queue-wide limits in force, and which the configuration sets; a command that has a
configured limit writes it (no worker needed), and one without leaves a limit set from Node alone."""

from __future__ import annotations

import json

from conveyor import Conveyor
from tests.cli.conftest import Cli


async def test_limits_shows_a_limit_set_from_node_as_set_elsewhere(conveyor_cli: Cli, app: Conveyor) -> None:
    await app.client.hset("bull:indexing:meta", mapping={"max": 7, "duration": 1000, "concurrency": 2})
    shown = await conveyor_cli.ainvoke("limits", "indexing")
    assert shown.exit_code == 0, shown.output
    assert "7 per 1000 ms" in shown.stdout
    assert "elsewhere" in shown.stdout
    assert await app.client.hgetall("bull:indexing:meta") == {"max": "7", "duration": "1000", "concurrency": "2"}


async def test_a_command_with_a_configured_limit_writes_it(conveyor_cli: Cli, app: Conveyor) -> None:
    conveyor_cli.env["CONVEYOR_QUEUES"] = json.dumps({"indexing": {"rate_limit": {"max": 5, "duration_ms": 2000}}})
    shown = await conveyor_cli.ainvoke("limits", "--json")
    assert shown.exit_code == 0, shown.output
    rows = {row["queue"]: row for row in json.loads(shown.stdout)}
    assert rows["indexing"]["in_force"] == {"rate_limit": {"max": 5, "duration_ms": 2000}, "global_concurrency": None}
    assert rows["indexing"]["configured"] == rows["indexing"]["in_force"]
    assert await app.client.hgetall("bull:indexing:meta") == {"max": "5", "duration": "2000"}


async def test_limits_can_be_removed_from_redis(conveyor_cli: Cli, app: Conveyor) -> None:
    await app.client.hset("bull:indexing:meta", mapping={"max": 7, "duration": 1000, "concurrency": 2})
    removed = await conveyor_cli.ainvoke("limits", "indexing", "--remove-rate-limit")
    assert removed.exit_code == 0, removed.output
    assert await app.client.hgetall("bull:indexing:meta") == {"concurrency": "2"}
    assert (await conveyor_cli.ainvoke("limits", "--remove-concurrency")).exit_code == 2  # which queue?
