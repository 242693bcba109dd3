"""Tenants: each has its own namespace of queues (and workers, dead letters, schedules), and quotas."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from conveyor import Conveyor, JobState, NewJob
from conveyor.app.tenants import TenantConveyor
from conveyor.config import RateLimit
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.errors import PayloadTooLargeError
from conveyor.queue.flows import FlowJob, Flows
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import (
    QuotaExceededError,
    TenantError,
    TenantQueue,
    TenantQuotas,
    TenantStore,
    UnknownTenantError,
)
from tests.advanced.conftest import advanced, running, state_is, wait_until


@pytest.fixture
async def tenants(app: Conveyor) -> AsyncIterator[tuple[TenantConveyor, TenantConveyor]]:
    store = TenantStore(app.client, app.settings.conveyor_prefix)
    await store.save("acme")
    await store.save("globex", TenantQuotas(max_waiting_jobs=2, max_payload_bytes=100))
    return TenantConveyor(app, "acme"), TenantConveyor(app, "globex")


async def test_each_tenant_sees_only_its_own_jobs(
    app: Conveyor, tenants: tuple[TenantConveyor, TenantConveyor]
) -> None:
    acme, globex = tenants
    acme_id = await acme.add("background", "ok", {"for": "acme"}, job_id="same-id")
    globex_id = await globex.add("background", "ok", {"for": "globex"}, job_id="same-id")
    assert acme_id == globex_id == "same-id"  # separate queues: one id in each is two jobs
    assert (await acme.queue("background").get_job("same-id")).data == {"for": "acme"}
    assert (await globex.queue("background").get_job("same-id")).data == {"for": "globex"}
    assert (await app.queue("background").counts()).pending == 0  # the deployment's own queue is untouched
    assert acme.queue("background").keys.wait == "bull:t:acme:background:wait"


async def test_a_tenants_worker_runs_only_that_tenants_jobs(
    app: Conveyor, tenants: tuple[TenantConveyor, TenantConveyor]
) -> None:
    acme, globex = tenants
    acme_id = await acme.add("background", "ok", {"result": "acme"})
    globex_id = await globex.add("background", "ok", {"result": "globex"})
    worker, _, _ = advanced(acme.worker(["background"]))
    async with running(worker):
        await wait_until(lambda: state_is(acme.queue("background"), acme_id, JobState.COMPLETED))
        workers = await acme.workers()
        assert [w.name for w in workers] == [worker.name]
        assert await globex.workers() == []
    assert await globex.queue("background").state_of(globex_id) is JobState.WAITING


async def test_the_waiting_jobs_quota_refuses_jobs_beyond_it(tenants: tuple[TenantConveyor, TenantConveyor]) -> None:
    _, globex = tenants
    await globex.add("background", "ok", {})
    await globex.add("indexing", "ok", {})  # counted across the tenant's queues
    with pytest.raises(QuotaExceededError, match="quota is 2"):
        await globex.add("background", "ok", {})
    with pytest.raises(QuotaExceededError):
        await globex.add_bulk("ai-processing", [NewJob("ok")])
    with pytest.raises(QuotaExceededError):
        await Flows.of(globex).add(FlowJob("background", "ok"))
    assert (await globex.queue("background").counts()).pending == 1


async def test_the_payload_quota_refuses_large_payloads(tenants: tuple[TenantConveyor, TenantConveyor]) -> None:
    acme, globex = tenants
    big = {"text": "x" * 200}
    with pytest.raises(PayloadTooLargeError):
        await globex.add("background", "ok", big)
    with pytest.raises(PayloadTooLargeError):
        await Schedules.of(globex).add(key="big", queue="background", type="ok", data=big, every_ms=1000)
    assert await acme.add("background", "ok", big)  # another tenant, another quota


async def test_a_quota_change_applies_within_a_second(
    app: Conveyor, tenants: tuple[TenantConveyor, TenantConveyor]
) -> None:
    _, globex = tenants
    await globex.add("background", "ok", {})
    await globex.add("background", "ok", {})
    await TenantStore(app.client, "bull").save("globex", TenantQuotas(max_waiting_jobs=10))
    queue = globex.queue("background")
    assert isinstance(queue, TenantQueue)
    queue._loaded_at = 0.0  # as if the cached quotas were a second old
    assert await globex.add("background", "ok", {})


async def test_a_removed_or_unknown_tenant_refuses_new_jobs(app: Conveyor) -> None:
    ghost = TenantConveyor(app, "ghost")
    with pytest.raises(UnknownTenantError):
        await ghost.add("background", "ok", {})
    with pytest.raises(TenantError):
        TenantConveyor(app, "Not Valid")


async def test_tenant_store_keeps_quotas_including_the_rate_limit_for_the_runtime(app: Conveyor) -> None:
    store = TenantStore(app.client, "bull")
    limit = RateLimit(max=5, duration_ms=1000)
    saved = await store.save("initech", TenantQuotas(rate_limit=limit))
    assert saved.prefix == "bull:t:initech"
    assert (await store.get("initech")).quotas.rate_limit == limit
    again = await store.save("initech", TenantQuotas(max_waiting_jobs=3))
    assert again.created_at == saved.created_at
    assert [tenant.id for tenant in await store.all()] == ["initech"]
    assert await store.remove("initech")
    assert not await store.exists("initech")


async def test_dead_letters_and_schedules_stay_in_the_tenants_namespace(
    app: Conveyor, tenants: tuple[TenantConveyor, TenantConveyor]
) -> None:
    acme, _ = tenants
    await Schedules.of(acme).add(key="tick", queue="background", type="fatal", every_ms=100)
    worker, _, _ = advanced(acme.worker(["background"]), scheduler=True)
    dlq = DeadLetters.of(acme, "background")
    async with running(worker):
        await wait_until(lambda: dlq.count())
    assert (await dlq.letters())[0].job_id.startswith("repeat:tick:")
    assert await DeadLetters.of(app, "background").count() == 0
    assert await Schedules.of(app).all() == []
    assert [s.key for s in await Schedules.of(acme).all()] == ["tick"]


async def test_the_rate_limit_quota_paces_a_tenants_jobs(app: Conveyor) -> None:
    store = TenantStore(app.client, app.settings.conveyor_prefix)
    await store.save("slow", TenantQuotas(rate_limit=RateLimit(max=2, duration_ms=1000)))
    slow = TenantConveyor(app, "slow")
    starts: list[float] = []

    @app.handler("background", "stamp")
    async def stamp(payload: dict[str, object]) -> None:
        starts.append(time.monotonic())

    ids = [await slow.add("background", "stamp", {}) for _ in range(6)]
    worker, _, _ = advanced(slow.worker(["background"]))
    async with running(worker):
        for job_id in ids:
            await wait_until(lambda j=job_id: state_is(slow.queue("background"), j, JobState.COMPLETED), timeout=10)
    assert max(starts) - min(starts) >= 1.9  # 2 a second: six jobs span three windows
