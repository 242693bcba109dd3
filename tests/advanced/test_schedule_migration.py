"""Schedules stored the old way (`<prefix>:conveyor:schedules` + `:next`) become BullMQ job schedulers the first
time a worker starts or a schedule command runs: once, keeping their spec and creation time, however many
processes race to do it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from conveyor import Conveyor, JobState
from conveyor.config import QueueSettings
from conveyor.queue.schedule_migration import migrate_legacy_schedules
from conveyor.queue.schedules import Schedules, schedule_spec
from conveyor.redis.keys import ConveyorKeys
from tests.advanced.conftest import advanced, running, wait_until

CREATED_MS = 1_700_000_000_000


async def store_legacy(app: Conveyor, **fields: Any) -> None:
    """Write a schedule exactly as Conveyor stored them before they were job schedulers."""
    spec = schedule_spec(**fields)
    keys = ConveyorKeys(app.queue(spec.queue).keys.prefix)
    record = {
        "spec": spec.model_dump(mode="json"),
        "defaults": QueueSettings(attempts=4).model_dump(mode="json"),
        "created": CREATED_MS,
        "updated": CREATED_MS,
    }
    await app.client.hset(keys.schedules, spec.key, json.dumps(record))
    await app.client.zadd(keys.schedule_ticks, {spec.key: CREATED_MS + 60_000})


async def legacy_keys_left(app: Conveyor) -> int:
    keys = ConveyorKeys(app.queue("background").keys.prefix)
    return int(await app.client.exists(keys.schedules, keys.schedule_ticks))


async def test_the_first_schedule_command_migrates_legacy_schedules_keeping_spec_and_creation(app: Conveyor) -> None:
    await store_legacy(app, key="nightly", queue="background", type="ok", cron="0 0 3 * * *", tz="Europe/Paris")
    await store_legacy(app, key="pulse", queue="background", type="ok", every_ms=5000, catch_up="skip", data={"a": 1})
    listed = {schedule.key: schedule for schedule in await Schedules.of(app).all()}
    assert sorted(listed) == ["nightly", "pulse"]
    assert (listed["nightly"].spec.cron, listed["nightly"].spec.tz) == ("0 0 3 * * *", "Europe/Paris")
    assert (listed["pulse"].spec.catch_up, listed["pulse"].spec.data) == ("skip", {"a": 1})
    assert all(schedule.created_at.timestamp() * 1000 == CREATED_MS for schedule in listed.values())
    assert listed["pulse"].defaults.attempts == 4  # the queue defaults it was saved with
    assert await legacy_keys_left(app) == 0
    queue = app.queue("background")
    assert await queue.client.zcard(queue.keys.repeat) == 2  # BullMQ's job schedulers, each with its next run
    assert len(await queue.job_ids(JobState.DELAYED, 0, 10)) == 2


async def test_processes_racing_to_migrate_migrate_each_schedule_once(app: Conveyor) -> None:
    for n in range(5):
        await store_legacy(app, key=f"s{n}", queue="background", type="ok", every_ms=60_000 + n)
    keys = ConveyorKeys(app.queue("background").keys.prefix)
    written = await asyncio.gather(*(migrate_legacy_schedules(app.queue("background").client, keys) for _ in range(6)))
    assert sorted(written) == [0, 0, 0, 0, 0, 5]
    queue = app.queue("background")
    assert await queue.client.zcard(queue.keys.repeat) == 5
    assert len(await queue.job_ids(JobState.DELAYED, 0, 100)) == 5  # one next run each, none doubled
    assert await legacy_keys_left(app) == 0
    assert await migrate_legacy_schedules(queue.client, keys) == 0  # nothing left: a cheap no-op


async def test_a_schedule_already_made_again_is_kept_and_its_legacy_record_dropped(app: Conveyor) -> None:
    await store_legacy(app, key="report", queue="background", type="ok", every_ms=60_000)
    current = await Schedules.of(app).add(key="report", queue="background", type="ok", every_ms=30_000)
    assert current.spec.every_ms == 30_000  # (this add migrated first, then replaced the spec)
    await store_legacy(app, key="report", queue="background", type="ok", every_ms=60_000)  # a stale copy
    [kept] = await Schedules.of(app).all()
    assert kept.spec.every_ms == 30_000
    assert await legacy_keys_left(app) == 0


async def test_a_starting_worker_migrates_legacy_schedules_and_runs_them(app: Conveyor) -> None:
    await store_legacy(app, key="fast", queue="background", type="ok", every_ms=200)
    worker, _, _ = advanced(app.worker(["background"]), scheduler=True)
    async with running(worker):
        await wait_until(lambda: _runs(app, "fast", 3))
    assert await legacy_keys_left(app) == 0


async def _runs(app: Conveyor, key: str, count: int) -> bool:
    done = await app.queue("background").job_ids(JobState.COMPLETED, 0, 100)
    return len([job_id for job_id in done if job_id.startswith(f"repeat:{key}:")]) >= count
