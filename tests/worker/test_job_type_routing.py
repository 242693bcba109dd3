"""Jobs reach a worker that has a handler for their type: two apps on one queue, and types no worker has."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor import Conveyor, JobState, load_settings
from conveyor.queue.job import REFUSALS_FIELD
from tests.worker.conftest import running, state_is, wait_until

GRACE_S = 1.5


@pytest.fixture
async def apps(redis_url: str) -> AsyncIterator[tuple[Conveyor, Conveyor]]:
    """Two applications on one Redis with different handlers on `background` (a short unknown-type grace)."""
    made = [
        Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2, conveyor_unknown_type_grace_s=GRACE_S))
        for _ in range(2)
    ]
    for app in made:
        await app.connect()
    yield made[0], made[1]
    for app in made:
        await app.close()


def _register(app: Conveyor, job_type: str, ledger: list[tuple[str, str, str]], who: str) -> None:
    @app.handler("background", job_type)
    async def handle(payload: dict[str, Any]) -> str:
        ledger.append((payload["id"], job_type, who))
        await asyncio.sleep(0.01)
        return who


async def _refusals(app: Conveyor, job_id: str) -> int:
    raw = await app.client.hget(app.queue("background").keys.job(job_id), REFUSALS_FIELD)
    return int(raw or 0)


async def test_two_apps_on_one_queue_each_run_only_their_own_types_and_no_job_fails(
    apps: tuple[Conveyor, Conveyor],
) -> None:
    mail, images = apps
    ledger: list[tuple[str, str, str]] = []  # (payload id, type, app that ran it): outside Redis
    _register(mail, "send-email", ledger, "mail")
    _register(images, "resize-image", ledger, "images")
    queue = mail.queue("background")
    ids = {}

    async def add(pairs: range) -> None:
        for n in pairs:
            for job_type in ("send-email", "resize-image"):
                key = f"{job_type}-{n}"
                ids[key] = await mail.add("background", job_type, {"id": key}, warn_unserved=False)

    # Half wait before the workers start: each worker's first fetches meet jobs of the other app's type, so
    # refusals happen however the machine schedules the workers (the live half alone may route by chance).
    await add(range(10))
    async with running(mail.worker()), running(images.worker()):
        await add(range(10, 20))
        await wait_until(lambda: _all_finished(mail, list(ids.values())), timeout=60)
    counts = await queue.counts()
    assert counts.failed == 0
    assert Counter(key for key, _, _ in ledger) == Counter(ids.keys())  # every job ran exactly once
    assert all(who == ("mail" if job_type == "send-email" else "images") for _, job_type, who in ledger)
    jobs = [await queue.get_job(job_id) for job_id in ids.values()]
    assert [job.attempts_made for job in jobs] == [1] * 40  # the successful run only: refusals used none
    refused = [await _refusals(mail, job_id) for job_id in ids.values()]
    print(f"refusals: {sum(refused)} over {sum(1 for r in refused if r)} jobs")
    assert sum(refused) > 0, "no job was taken by the worker without its handler: the test proved nothing"


async def _all_finished(app: Conveyor, job_ids: list[str]) -> bool:
    queue = app.queue("background")
    states = [await queue.state_of(job_id) for job_id in job_ids]
    return all(state in (JobState.COMPLETED, JobState.FAILED) for state in states)


async def test_job_whose_type_no_worker_has_fails_only_after_the_grace_period(
    apps: tuple[Conveyor, Conveyor],
) -> None:
    mail, _ = apps
    _register(mail, "send-email", [], "mail")
    queue = mail.queue("background")
    async with running(mail.worker()):
        added = time.monotonic()
        job_id = await mail.add("background", "no-such-type", {}, attempts=5)
        await wait_until(lambda: state_is(queue, job_id, JobState.FAILED), timeout=30)
        failed_after = time.monotonic() - added
    job = await queue.get_job(job_id)
    assert "UnknownJobTypeError" in (job.failed_reason or "")
    assert "'no-such-type'" in (job.failed_reason or "")
    assert "'background'" in (job.failed_reason or "")
    assert failed_after >= GRACE_S
    assert job.attempts_made == 1  # the final failure only, not one per refusal nor the job's 5 attempts
    assert await _refusals(mail, job_id) >= 2


async def test_job_waits_for_a_worker_with_its_handler_that_starts_within_the_grace_period(
    apps: tuple[Conveyor, Conveyor],
) -> None:
    mail, images = apps
    ledger: list[tuple[str, str, str]] = []
    _register(mail, "send-email", ledger, "mail")
    _register(images, "resize-image", ledger, "images")
    queue = mail.queue("background")
    async with running(mail.worker()):
        job_id = await mail.add("background", "resize-image", {"id": "late"})
        await wait_until(lambda: _refusals(mail, job_id))  # the worker without the handler has put it back
        async with running(images.worker()):
            await wait_until(lambda: state_is(queue, job_id, JobState.COMPLETED), timeout=30)
    assert ledger == [("late", "resize-image", "images")]
    assert (await queue.get_job(job_id)).attempts_made == 1


async def test_worker_advertises_its_job_types_per_queue_and_serves_only_the_queues_it_handles(
    apps: tuple[Conveyor, Conveyor],
) -> None:
    mail, _ = apps
    _register(mail, "send-email", [], "mail")
    _register(mail, "send-sms", [], "mail")
    async with running(mail.worker()) as worker:
        (info,) = await mail.workers()
    assert info.id == worker.id
    assert list(info.queues) == ["background"]
    assert info.job_types == {"background": ["send-email", "send-sms"]}


async def test_add_logs_a_warning_only_when_no_live_worker_advertises_the_type(
    apps: tuple[Conveyor, Conveyor], caplog: pytest.LogCaptureFixture
) -> None:
    mail, producer = apps
    _register(mail, "send-email", [], "mail")
    with caplog.at_level(logging.WARNING, logger="conveyor.app.conveyor"):
        async with running(mail.worker()):
            await producer.add("background", "send-email", {"id": "served"})
            assert not _add_warnings(caplog)
            job_id = await producer.add("background", "send-emial", {"id": "typo"})
    assert job_id  # added all the same: a worker may start later
    (record,) = _add_warnings(caplog)  # (the worker that takes it logs its own warning)
    assert "'send-emial'" in record.getMessage()
    assert "'background'" in record.getMessage()


def _add_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "conveyor.app.conveyor"]
