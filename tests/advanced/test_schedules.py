"""Schedules (BullMQ job schedulers): idempotent by key, cron (seconds, time zones) or interval, one job per tick
however many workers run, missed ticks run once or are skipped, and ticks run on time."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest

from conveyor import Conveyor, Job, JobState
from conveyor.queue.errors import InvalidOptionsError, UnknownQueueError
from conveyor.queue.schedules import Schedules, TickPlan, next_tick, plan_tick, schedule_spec, tick_job_id
from tests.advanced.conftest import advanced, running, wait_until
from tests.support import assert_latency


def ms(*args: int, tz: object = UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[arg-type]


async def job_ids(app: Conveyor, queue: str = "background") -> list[str]:
    found: set[str] = set()
    # One state after another, not atomically: a job that moves on between two reads is seen in both.
    for state in (JobState.WAITING, JobState.ACTIVE, JobState.COMPLETED, JobState.FAILED):
        found.update(await app.queue(queue).job_ids(state, 0, 1000))
    return sorted(found)


def tick_of(job_id: str) -> int:
    return int(job_id.rsplit(":", 1)[1])


# --- specs and ticks ---------------------------------------------------------------------------------------


def test_cron_with_seconds_and_a_time_zone_ticks_on_the_local_wall_clock() -> None:
    spec = schedule_spec(key="daily", queue="background", type="ok", cron="0 30 9 * * *", tz="Europe/Paris")
    winter = next_tick(spec, ms(2026, 1, 10, 12, 0, 0))
    summer = next_tick(spec, ms(2026, 7, 10, 12, 0, 0))
    assert winter == ms(2026, 1, 11, 8, 30, 0)  # 09:30 in Paris is 08:30 UTC in winter
    assert summer == ms(2026, 7, 11, 7, 30, 0)  # and 07:30 UTC in summer
    every_ten = schedule_spec(key="s", queue="background", type="ok", cron="*/10 * * * * *")
    assert next_tick(every_ten, ms(2026, 1, 1, 0, 0, 3)) == ms(2026, 1, 1, 0, 0, 10)


def test_a_wall_time_that_occurs_twice_runs_once_and_a_skipped_one_runs_an_hour_later() -> None:
    spec = schedule_spec(key="n", queue="background", type="ok", cron="0 30 2 * * *", tz="Europe/Paris")
    autumn = [next_tick(spec, ms(2026, 10, 24, 12, 0, 0))]
    autumn.append(next_tick(spec, autumn[0]))
    assert autumn == [ms(2026, 10, 25, 0, 30, 0), ms(2026, 10, 26, 1, 30, 0)]  # 02:30 CEST, then 02:30 CET
    spring = next_tick(spec, ms(2026, 3, 28, 12, 0, 0))
    assert spring == ms(2026, 3, 29, 1, 30, 0)  # 02:30 does not exist that night: 03:30 CEST


def test_interval_ticks_on_multiples_of_the_interval() -> None:
    spec = schedule_spec(key="i", queue="background", type="ok", every_ms=5000)
    assert next_tick(spec, 12_345) == 15_000
    assert next_tick(spec, 15_000) == 20_000


def test_a_missed_tick_runs_once_or_is_skipped_by_option() -> None:
    once = schedule_spec(key="i", queue="background", type="ok", every_ms=10_000)
    skip = once.model_copy(update={"catch_up": "skip"})
    missed_tick, now = 10_000, 65_000  # down for most of a minute: ticks 10 s … 60 s missed
    assert plan_tick(once, missed_tick, now) == TickPlan(fire=60_000, next=70_000)  # the latest, once
    assert plan_tick(skip, missed_tick, now) == TickPlan(fire=None, next=70_000)
    assert plan_tick(skip, missed_tick, 60_200).fire == 60_000  # the latest tick is just due, not missed
    assert plan_tick(skip, 60_000, 60_020) == TickPlan(fire=60_000, next=70_000)  # on time


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"cron": "not a cron"}, "cron"),
        ({"cron": "* * * * *", "every_ms": 1000}, "schedule"),
        ({}, "schedule"),
        ({"every_ms": 1000, "tz": "Mars/Olympus"}, "tz"),
        ({"every_ms": 1000, "key": "has space"}, "key"),
        ({"every_ms": 1000, "options": {"job_id": "fixed"}}, "options"),
    ],
)
def test_invalid_schedules_are_refused_naming_the_field(fields: dict[str, object], bad: str) -> None:
    base: dict[str, object] = {"key": "k", "queue": "background", "type": "ok"}
    with pytest.raises(InvalidOptionsError) as caught:
        schedule_spec(**{**base, **fields})
    assert bad in caught.value.fields


# --- storage ---------------------------------------------------------------------------------------------


async def test_adding_a_schedule_again_with_the_same_spec_changes_nothing(app: Conveyor) -> None:
    schedules = Schedules.of(app)
    first = await schedules.add(key="report", queue="background", type="ok", cron="0 9 * * *", tz="Europe/Paris")
    again = await schedules.add(key="report", queue="background", type="ok", cron="0 9 * * *", tz="Europe/Paris")
    assert again == first
    changed = await schedules.add(key="report", queue="background", type="ok", cron="0 10 * * *", tz="Europe/Paris")
    assert changed.spec.cron == "0 10 * * *"
    assert changed.created_at == first.created_at
    assert [schedule.key for schedule in await schedules.all()] == ["report"]
    assert await schedules.remove("report")
    assert not await schedules.remove("report")
    assert await schedules.all() == []


async def test_a_schedule_for_an_unknown_queue_is_refused(app: Conveyor) -> None:
    with pytest.raises(UnknownQueueError):
        await Schedules.of(app).add(key="x", queue="nope", type="ok", every_ms=1000)


# --- firing ----------------------------------------------------------------------------------------------


async def test_interval_ticks_fire_within_100_ms(app: Conveyor) -> None:
    worker, _, _ = advanced(app.worker(["background"]), scheduler=True)
    async with running(worker):  # serving before the first tick: a first run taken late would skip a slot
        await Schedules.of(app).add(key="fast", queue="background", type="ok", every_ms=250)
        jobs = await wait_until(lambda: _ticks_run(app, 5))
    ticks = [tick_of(job.id) for job in jobs]
    assert all(_ms(job.created_at) <= tick_of(job.id) for job in jobs)  # each run's job waits, delayed, for its tick
    assert_latency([_ms(job.processed_at) - tick_of(job.id) for job in jobs], promised_ms=100, what="tick to started")
    assert [b - a for a, b in itertools.pairwise(ticks)] == [250] * 4  # no tick skipped or doubled


async def _at_least(app: Conveyor, count: int) -> bool:
    return len(await job_ids(app)) >= count


async def _ticks_run(app: Conveyor, count: int) -> list[Job] | None:
    """The jobs of `count` ticks after the first (which may fire at once on start), once all have started."""
    ids = sorted(await job_ids(app), key=tick_of)[1 : count + 1]
    jobs = [await app.queue("background").get_job(job_id) for job_id in ids]
    return jobs if len(jobs) == count and all(job.processed_at for job in jobs) else None


def _ms(moment: datetime | None) -> float:
    assert moment is not None
    return moment.timestamp() * 1000


async def test_cron_ticks_with_seconds_fire_within_100_ms(app: Conveyor) -> None:
    worker, _, _ = advanced(app.worker(["background"]), scheduler=True)
    await Schedules.of(app).add(key="sec", queue="background", type="ok", cron="* * * * * *", tz="Asia/Kathmandu")
    async with running(worker):
        jobs = await wait_until(lambda: _ticks_run(app, 3), timeout=10)
    assert all(tick_of(job.id) % 1000 == 0 for job in jobs), [job.id for job in jobs]
    assert_latency([_ms(job.processed_at) - tick_of(job.id) for job in jobs], promised_ms=100, what="tick to started")


async def test_exactly_one_job_per_tick_however_many_workers_run(app: Conveyor) -> None:
    workers = [advanced(app.worker(["background"]), scheduler=True)[0] for _ in range(3)]
    await Schedules.of(app).add(key="many", queue="background", type="ok", every_ms=100)
    async with running(workers[0]), running(workers[1]), running(workers[2]):
        await wait_until(lambda: _at_least(app, 12))
    ticks = [tick_of(job_id) for job_id in await job_ids(app)]
    assert len(ticks) >= 10
    assert len(set(ticks)) == len(ticks), sorted(ticks)  # no tick ran twice, with three workers racing for each
    assert {tick % 100 for tick in ticks} == {ticks[0] % 100}, sorted(ticks)  # all on the 100 ms grid
    # A tick is skipped only when the one before it was taken more than an interval late (BullMQ computes the
    # next run from the clock then): on a loaded machine that happens at 100 ms; the timing tests cover precision.


async def test_a_new_schedule_runs_on_its_first_tick_without_waking_anyone(app: Conveyor) -> None:
    worker, _, _ = advanced(app.worker(["background"]), dlq=None)
    async with running(worker):
        await asyncio.sleep(0.3)  # the worker is idle, blocked waiting for work
        await Schedules.of(app).add(key="soon", queue="background", type="ok", every_ms=200)
        await wait_until(lambda: _at_least(app, 2), timeout=1)


async def test_a_missed_run_runs_once_when_workers_resume_or_is_skipped_by_option(app: Conveyor) -> None:
    schedules = Schedules.of(app)
    await schedules.add(key="late", queue="background", type="ok", every_ms=60_000)
    await schedules.add(key="skipped", queue="background", type="ok", every_ms=60_000, catch_up="skip")
    queue = app.queue("background")
    runs = {s.key: int(_ms(s.next_run)) for s in await schedules.all()}
    later = max(runs.values()) + 5 * 60_000 + 5000  # every worker was down for five ticks
    worker, _, _ = advanced(app.worker(["background"]), dlq=None)
    worker.runners[0].now_ms = lambda: later  # type: ignore[method-assign]
    for job_id in (tick_job_id(key, run) for key, run in runs.items()):
        await queue.promote(job_id)
    async with running(worker):
        await wait_until(lambda: _at_least_completed(app, 2))
    late = await queue.get_job(tick_job_id("late", runs["late"]))
    skipped = await queue.get_job(tick_job_id("skipped", runs["skipped"]))
    assert late.result == "done"  # the missed run ran, once
    assert skipped.result is None  # completed without running its handler
    next_runs = {s.key: int(_ms(s.next_run)) for s in await schedules.all()}
    assert next_runs == {key: (later // 60_000 + 1) * 60_000 for key in runs}  # the next tick after now, once


async def _at_least_completed(app: Conveyor, count: int) -> bool:
    return len(await app.queue("background").job_ids(JobState.COMPLETED, 0, 100)) >= count


async def test_a_removed_schedule_stops_firing(app: Conveyor) -> None:
    worker, _, _ = advanced(app.worker(["background"]), scheduler=True)
    schedules = Schedules.of(app)
    await schedules.add(key="brief", queue="background", type="ok", every_ms=100)
    async with running(worker):
        await wait_until(lambda: _at_least(app, 2))
        await schedules.remove("brief")
        count = len(await job_ids(app))
        await asyncio.sleep(0.5)
        assert len(await job_ids(app)) <= count + 1  # at most a tick that was already being fired


async def test_a_scheduler_made_elsewhere_that_conveyor_cannot_validate_is_listed_as_it_is(app: Conveyor) -> None:
    queue = app.queue("background")
    await queue.client.zadd(queue.keys.repeat, {"tiny": 1_000})
    await queue.client.hset(queue.keys.job_scheduler("tiny"), mapping={"name": "ok", "every": "5", "ic": "3"})
    [listed] = await Schedules.of(app).all()
    assert (listed.key, listed.spec.type, listed.spec.every_ms, listed.iterations) == ("tiny", "ok", 5, 3)
    assert listed.spec.describe() == "every 5 ms"
