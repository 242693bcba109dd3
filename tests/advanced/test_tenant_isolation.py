"""A tenant's token neither sees nor touches another tenant's queues or jobs, by any API path: every query,
mutation and subscription is tried with tenant acme's token against tenant globex's data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from conveyor import Conveyor, JobState
from conveyor.api import TokenStore
from conveyor.app.tenants import TenantConveyor
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.events import EventStream
from conveyor.queue.flows import FlowJob, Flows
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore
from tests.advanced.conftest import advanced, running, state_is, wait_until
from tests.api.conftest import Api, code_of

BACKGROUND = '"background"'
ACME_JOB = "acme-job"  # the one job of tenant acme in the world below


@dataclass
class World:
    """Tenant globex's data, acme's job `1`, and tokens of acme."""

    api: Api
    acme: TenantConveyor
    globex: TenantConveyor
    token: str  # acme's admin token
    viewer: str  # acme's viewer token
    failed: str  # a failed (and dead-lettered) globex job
    delayed: str  # a delayed globex job
    parent: str  # a globex flow parent

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.api.gql(query, variables, token=self.token)

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        return await self.api.data(query, variables, token=self.token)

    async def globex_counts(self) -> tuple[int, ...]:
        counts = await self.globex.queue("background").counts()
        return (counts.waiting, counts.prioritized, counts.delayed, counts.failed, counts.waiting_children)


@pytest.fixture
async def world(api: Api, api_app: Conveyor) -> World:
    store = TenantStore(api_app.client, "bull")
    await store.save("acme")
    await store.save("globex")
    acme, globex = TenantConveyor(api_app, "acme"), TenantConveyor(api_app, "globex")
    tokens = TokenStore(api_app.client, "bull")
    token = (await tokens.create("acme admin", "admin", tenant="acme")).token
    viewer = (await tokens.create("acme viewer", "viewer", tenant="acme")).token
    worker, _, _ = advanced(globex.worker(["background"]))
    async with running(worker):
        failed = await globex.add("background", "fail", {"owner": "globex"}, job_id="g-failed")
        await wait_until(lambda: DeadLetters.of(globex, "background").count())
    assert await globex.add("background", "secret", {"owner": "globex"}, job_id="g-pending")
    delayed = await globex.add("background", "secret", {"owner": "globex"}, delay_ms=60_000, job_id="g-delayed")
    parent = (await Flows.of(globex).add(FlowJob("background", "secret", children=[FlowJob("indexing", "ok")]))).job_id
    await Schedules.of(globex).add(key="g-sched", queue="background", type="secret", every_ms=60_000)
    assert await acme.add("background", "ok", {"owner": "acme"}, job_id=ACME_JOB) == ACME_JOB
    return World(api, acme, globex, token, viewer, failed, delayed, parent)


# --- queries ---------------------------------------------------------------------------------------------


async def test_queues_and_queue_count_only_the_tenants_jobs(world: World) -> None:
    queues = {q["name"]: q for q in (await world.data("{ queues { name prioritized failed delayed } }"))["queues"]}
    assert (queues["background"]["prioritized"], queues["background"]["failed"], queues["background"]["delayed"]) == (
        1,
        0,
        0,
    )
    one = await world.data(f"{{ queue(name: {BACKGROUND}) {{ prioritized failed waitingChildren lastEventId }} }}")
    own = await EventStream(world.acme.client, world.acme.queue("background").keys).last_id()
    assert one["queue"] == {"prioritized": 1, "failed": 0, "waitingChildren": 0, "lastEventId": own}


async def test_job_lookups_find_only_the_tenants_jobs(world: World) -> None:
    query = "query($id: ID!, $q: String) { job(queue: $q, id: $id) { data } }"
    assert (await world.data(query, {"id": ACME_JOB, "q": "background"}))["job"]["data"] == {"owner": "acme"}
    await world.acme.queue("background").scripts.add_log(ACME_JOB, "acme's line")
    logs = await world.data('{ recentJobs(queueName: "background") { logs } }')
    assert logs["recentJobs"] == [{"logs": ["acme's line"]}]
    assert (await world.data(query, {"id": ACME_JOB}))["job"]["data"] == {"owner": "acme"}
    for other in (world.failed, world.delayed, world.parent, "g-pending"):
        assert (await world.data(query, {"id": other, "q": "background"}))["job"] is None
        assert (await world.data(query, {"id": other}))["job"] is None


async def test_job_lists_hold_only_the_tenants_jobs(world: World) -> None:
    recent = (await world.data(f"{{ recentJobs(queueName: {BACKGROUND}, limit: 50) {{ data }} }}"))["recentJobs"]
    assert [job["data"] for job in recent] == [{"owner": "acme"}]
    page = await world.data(f"{{ jobs(queue: {BACKGROUND}, first: 50) {{ nodes {{ id data }} }} }}")
    assert [job["data"] for job in page["jobs"]["nodes"]] == [{"owner": "acme"}]
    failed = await world.data(f"{{ jobs(queue: {BACKGROUND}, states: [FAILED, DELAYED]) {{ nodes {{ id }} }} }}")
    assert failed["jobs"]["nodes"] == []


async def test_workers_and_metrics_are_the_tenants_own(world: World) -> None:
    worker = world.globex.worker(["background"])
    async with running(worker):
        await wait_until(lambda: world.globex.workers())
        assert (await world.data("{ workers { id } }"))["workers"] == []
        async with world.api.ws(world.token) as ws:
            op = await ws.subscribe("subscription { workers { id } }")
            assert (await ws.next_data(op))["workers"] == []
    metrics = await world.data(f"{{ queueMetrics(queue: {BACKGROUND}) {{ completed failed }} }}")
    assert metrics["queueMetrics"] == {"completed": 0, "failed": 0}


async def test_dead_letters_schedules_and_flows_of_another_tenant_are_invisible(world: World) -> None:
    letters = await world.data(f"{{ deadLetters(queue: {BACKGROUND}) {{ total nodes {{ jobId }} }} }}")
    assert letters["deadLetters"] == {"total": 0, "nodes": []}
    one = 'query($id: ID!) { deadLetter(queue: "background", id: $id) { jobId } }'
    assert (await world.data(one, {"id": world.failed}))["deadLetter"] is None
    assert (await world.data("{ schedules { key } }"))["schedules"] == []
    assert (await world.data('{ schedule(key: "g-sched") { key } }'))["schedule"] is None
    tree = 'query($id: ID!) { job(queue: "background", id: $id) { children { id } parent { id } childrenResults } }'
    assert (await world.data(tree, {"id": world.parent}))["job"] is None


async def test_tenant_tokens_cannot_manage_tokens_or_tenants(world: World) -> None:
    assert (await world.data("{ me { name role } }"))["me"] == {"name": "acme admin", "role": "ADMIN"}
    for query in (
        "{ apiTokens { id } }",
        'mutation { createApiToken(name: "x", role: ADMIN) { token } }',
        'mutation { createApiToken(name: "x", role: ADMIN, tenant: "globex") { token } }',
        'mutation { revokeApiToken(id: "0123456789abcdef") }',
        "{ tenants { id } }",
        '{ tenant(id: "globex") { id } }',
        'mutation { saveTenant(id: "globex") { id } }',
        'mutation { removeTenant(id: "globex") }',
    ):
        assert code_of(await world.gql(query)) == "FORBIDDEN", query
    assert await TenantStore(world.acme.client, "bull").exists("globex")


# --- mutations -------------------------------------------------------------------------------------------


async def test_adding_jobs_flows_and_chains_writes_to_the_tenants_namespace(world: World) -> None:
    before = await world.globex_counts()
    await world.data('mutation { addJob(queueName: "background", type: "ok") { id } }')
    await world.data('mutation { addJobs(queueName: "background", jobs: [{type: "ok"}]) { id } }')
    flow = '{queue: "background", type: "ok", children: [{queue: "background", type: "ok"}]}'
    await world.data(f"mutation {{ addFlow(flow: {flow}) {{ id }} }}")
    await world.data('mutation { addChain(steps: [{queue: "background", type: "ok"}]) { id } }')
    counts = await world.acme.queue("background").counts()
    assert (counts.prioritized, counts.waiting_children) == (5, 1)
    assert await world.globex_counts() == before


async def test_actions_on_another_tenants_job_ids_find_nothing(world: World) -> None:
    before = await world.globex_counts()
    for action in ("retryJob", "promoteJob", "removeJob"):
        query = f'mutation($id: ID!) {{ {action}(queue: "background", id: $id) {{ __typename }} }}'
        query = query.replace(" { __typename }", "") if action == "removeJob" else query
        for job_id in (world.failed, world.delayed):
            assert code_of(await world.gql(query, {"id": job_id})) in ("JOB_NOT_FOUND", "JOB_STATE_CONFLICT")
    cancel = 'mutation($id: ID!) { cancelJob(queue: "background", id: $id) { removed } }'
    assert code_of(await world.gql(cancel, {"id": world.delayed})) == "JOB_NOT_FOUND"
    ids = [world.failed, world.delayed, "g-pending"]
    for action in ("retryJobs", "promoteJobs", "removeJobs", "cancelJobs"):
        bulk = f'mutation($ids: [ID!]!) {{ {action}(queue: "background", ids: $ids) {{ succeeded }} }}'
        assert (await world.data(bulk, {"ids": ids}))[action]["succeeded"] == []
    where = 'mutation { retryJobsWhere(queue: "background", dryRun: false) { matched retried } }'
    assert (await world.data(where))["retryJobsWhere"] == {"matched": 0, "retried": 0}
    assert await world.globex_counts() == before
    assert await world.globex.queue("background").state_of(world.delayed) is JobState.DELAYED


async def test_pausing_and_clearing_act_on_the_tenants_queue_only(world: World) -> None:
    before = await world.globex_counts()
    await world.data('mutation { pauseQueue(name: "background") }')
    assert await world.acme.queue("background").is_paused()
    assert not await world.globex.queue("background").is_paused()
    await world.data('mutation { resumeQueue(name: "background") }')
    await world.data('mutation { clearQueue(name: "background", force: true) }')
    assert (await world.acme.queue("background").counts()).prioritized == 0
    assert await world.globex_counts() == before


async def test_dead_letter_replay_and_purge_reach_only_the_tenants_letters(world: World) -> None:
    for action in ("replayDeadLetters", "purgeDeadLetters"):
        for selection in ("filter: {}", f'ids: ["{world.failed}"]'):
            query = f'mutation {{ {action}(queue: "background", {selection}) {{ matched }} }}'
            assert (await world.data(query))[action]["matched"] == 0
    assert await DeadLetters.of(world.globex, "background").count() == 1


async def test_schedules_with_another_tenants_key_are_the_tenants_own(world: World) -> None:
    save = """mutation { saveSchedule(schedule: {key: "g-sched", queue: "background", type: "ok", everyMs: 1000})
        { key everyMs } }"""
    assert (await world.data(save))["saveSchedule"] == {"key": "g-sched", "everyMs": 1000}
    assert (await world.data('mutation { removeSchedule(key: "g-sched") }'))["removeSchedule"]
    assert not (await world.data('mutation { removeSchedule(key: "g-sched") }'))["removeSchedule"]
    (theirs,) = await Schedules.of(world.globex).all()
    assert (theirs.spec.type, theirs.spec.every_ms) == ("secret", 60_000)


async def test_a_tenants_viewer_is_still_only_a_viewer(world: World) -> None:
    add = 'mutation { addJob(queueName: "background", type: "ok") { id } }'
    assert code_of(await world.api.gql(add, token=world.viewer)) == "FORBIDDEN"


# --- subscriptions ---------------------------------------------------------------------------------------


async def test_job_subscriptions_find_only_the_tenants_jobs(world: World) -> None:
    async with world.api.ws(world.token) as ws:
        progress = 'subscription($id: ID!) { jobProgress(queue: "background", id: $id) { id } }'
        op = await ws.subscribe(progress, {"id": world.delayed})
        message = await ws.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "JOB_NOT_FOUND", message
    async with world.api.ws(world.token) as ws:
        updates = 'subscription($id: ID!) { jobUpdates(queue: "background", id: $id) { event job { data } } }'
        op = await ws.subscribe(updates, {"id": ACME_JOB})
        assert (await ws.next_data(op))["jobUpdates"]["job"]["data"] == {"owner": "acme"}


async def test_queue_stats_and_events_stream_only_the_tenants_queue(world: World) -> None:
    async with world.api.ws(world.token) as ws:
        stats = await ws.subscribe(f"subscription {{ queueStats(queueName: {BACKGROUND}) {{ prioritized failed }} }}")
        assert (await ws.next_data(stats))["queueStats"] == {"prioritized": 1, "failed": 0}
        await ws.complete(stats)
        events = await ws.subscribe('subscription { queueEvents(queue: "background", since: "0") { event fields } }')
        history = []
        for _ in range(await world.acme.client.xlen(world.acme.queue("background").keys.events)):
            history.append((await ws.next_data(events))["queueEvents"])
        assert all(event["fields"].get("name") != "secret" for event in history)
        await world.globex.add("background", "secret", {"owner": "globex"})
        await world.acme.add("background", "ok", {"owner": "acme"})
        nxt = (await ws.next_data(events))["queueEvents"]
        assert (nxt["event"], nxt["fields"].get("name")) == ("added", "ok")


async def test_throughput_counts_only_the_tenants_jobs(world: World) -> None:
    worker = world.globex.worker(["background"])
    async with running(worker), world.api.ws(world.token) as ws:
        op = await ws.subscribe('subscription { queueThroughput(queue: "background", interval: 0.5) { completed } }')
        await asyncio.sleep(0.1)
        ids = [await world.globex.add("background", "ok", {}) for _ in range(3)]
        await wait_until(lambda: state_is(world.globex.queue("background"), ids[-1], JobState.COMPLETED))
        totals = [(await ws.next_data(op))["queueThroughput"]["completed"] for _ in range(3)]
    assert totals == [0, 0, 0]


async def test_removing_a_tenant_revokes_its_tokens(world: World) -> None:
    assert (await world.api.post({"query": "{ queues { name } }"}, token=world.token)).status_code == 200
    await TenantStore(world.acme.client, "bull").remove("acme")
    assert (await world.api.post({"query": "{ queues { name } }"}, token=world.token)).status_code == 401
