"""Every resolver of the schema keeps a token scoped to queue A away from queue B.

`RULES` says, for each field with its own resolver (every root field of Query, Mutation and Subscription, and the
resolved fields of object types), how a token scoped to A is kept from B: `REFUSED` (FORBIDDEN, and B unchanged)
or `HIDDEN` (answered, but nothing of B in the answer, while an unscoped admin does see B there). The schema is
walked, so a field added without a rule here fails `test_every_resolver_has_a_scope_rule`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conveyor import Conveyor, JobState
from conveyor.api import TokenStore
from conveyor.api.schema import build_schema
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore, tenant_quotas
from tests.advanced.conftest import advanced
from tests.api.conftest import Api, running_worker
from tests.support import running, wait_until

A, B = "ai-processing", "background"  # the token's queue, and a queue outside its scope


@dataclass(frozen=True)
class Case:
    """A document reaching for queue B; `hidden` cases are answered without B, the others refused."""

    document: str
    hidden: bool = False
    control: bool = True  # hidden only: an unscoped admin sees B in the same answer (the seed worked)
    variables: dict[str, str] = field(default_factory=dict)  # names of seeded ids (see `Seed.ids`)


def refused(document: str, **variables: str) -> Case:
    return Case(document, variables=variables)


def hidden(document: str, *, control: bool = True, **variables: str) -> Case:
    return Case(document, hidden=True, control=control, variables=variables)


FLOW_AB = '{queue: "ai-processing", type: "ok", children: [{queue: "background", type: "ok"}]}'
STEPS_AB = '[{queue: "ai-processing", type: "ok"}, {queue: "background", type: "ok"}]'


def save_schedule(key: str, queue: str) -> str:
    """A `saveSchedule` mutation of an hourly `ok` job."""
    schedule = f'{{key: "{key}", queue: "{queue}", type: "ok", everyMs: 3600000}}'
    return f"mutation {{ saveSchedule(schedule: {schedule}) {{ key }} }}"


RULES: dict[str, tuple[Case, ...]] = {
    "Query.me": (hidden("{ me { name queues } }", control=False),),
    "Query.queues": (hidden("{ queues { name } }"),),
    "Query.queue": (refused('{ queue(name: "background") { name } }'),),
    "Query.job": (
        refused('{ job(queue: "background", id: "b-job") { id } }'),
        hidden('{ job(id: "b-job") { id queue } }'),
    ),
    "Query.recentJobs": (refused('{ recentJobs(queueName: "background") { id } }'),),
    "Query.jobs": (refused('{ jobs(queue: "background") { edges { node { id } } } }'),),
    "Query.workers": (hidden("{ workers { queues { name } } }"),),
    "Query.queueMetrics": (refused('{ queueMetrics(queue: "background") { completed } }'),),
    "Query.apiTokens": (refused("{ apiTokens { id queues } }"),),
    "Query.deadLetters": (
        refused('{ deadLetters(queue: "background") { total } }'),
        hidden('{ deadLetters(queue: "ai-processing") { nodes { jobId parent } } }'),
    ),
    "Query.deadLetter": (refused('{ deadLetter(queue: "background", id: "b-job") { jobId } }'),),
    "Query.schedules": (hidden("{ schedules { key queue } }"),),
    "Query.schedule": (refused('{ schedule(key: "b-schedule") { key } }'),),
    "Query.tenants": (refused("{ tenants { id } }"),),
    "Query.tenant": (refused('{ tenant(id: "acme") { id } }'),),
    "Tenant.queues": (refused("{ tenants { queues { name } } }"),),
    "Query.redisInfo": (refused("{ redisInfo { version } }"),),
    "Mutation.cleanJobs": (
        refused('mutation { cleanJobs(queue: "background", state: COMPLETED, olderThanMs: 0) { removed } }'),
    ),
    "Mutation.promoteDelayedJobs": (refused('mutation { promoteDelayedJobs(queue: "background") }'),),
    "Query.searchCode": (refused('{ searchCode(query: "queue") { file } }'),),
    "Queue.lastEventId": (refused('{ queue(name: "background") { lastEventId } }'),),
    "Queue.limits": (refused('{ queue(name: "background") { limits { globalConcurrency } } }'),),
    "Job.logs": (refused('{ job(queue: "background", id: "b-job") { logs } }'),),
    "Job.children": (
        hidden('query($id: ID!) { job(queue: "ai-processing", id: $id) { children { id queue } } }', id="parent_a"),
    ),
    "Job.parent": (
        hidden('query($id: ID!) { job(queue: "ai-processing", id: $id) { parent { id queue } } }', id="child_a"),
    ),
    "Job.childrenResults": (
        hidden('query($id: ID!) { job(queue: "ai-processing", id: $id) { childrenResults } }', id="parent_a"),
    ),
    "JobConnection.nodes": (refused('{ jobs(queue: "background") { nodes { id } } }'),),
    "Mutation.addJob": (refused('mutation { addJob(queueName: "background", type: "ok") { id } }'),),
    "Mutation.addJobs": (refused('mutation { addJobs(queueName: "background", jobs: [{type: "ok"}]) { id } }'),),
    "Mutation.pauseQueue": (refused('mutation { pauseQueue(name: "background") }'),),
    "Mutation.resumeQueue": (refused('mutation { resumeQueue(name: "background") }'),),
    "Mutation.clearQueue": (refused('mutation { clearQueue(name: "background", force: true) }'),),
    "Mutation.retryJob": (refused('mutation { retryJob(queue: "background", id: "b-job") { id } }'),),
    "Mutation.retryJobs": (refused('mutation { retryJobs(queue: "background", ids: ["b-job"]) { succeeded } }'),),
    "Mutation.retryJobsWhere": (refused('mutation { retryJobsWhere(queue: "background") { matched } }'),),
    "Mutation.promoteJob": (refused('mutation { promoteJob(queue: "background", id: "b-job") { id } }'),),
    "Mutation.promoteJobs": (refused('mutation { promoteJobs(queue: "background", ids: ["b-job"]) { succeeded } }'),),
    "Mutation.removeJob": (refused('mutation { removeJob(queue: "background", id: "b-job") }'),),
    "Mutation.removeJobs": (refused('mutation { removeJobs(queue: "background", ids: ["b-job"]) { succeeded } }'),),
    "Mutation.cancelJob": (refused('mutation { cancelJob(queue: "background", id: "b-job") { removed } }'),),
    "Mutation.cancelJobs": (refused('mutation { cancelJobs(queue: "background", ids: ["b-job"]) { succeeded } }'),),
    "Mutation.createApiToken": (refused('mutation { createApiToken(name: "x", role: ADMIN) { token } }'),),
    "Mutation.revokeApiToken": (refused("mutation($id: ID!) { revokeApiToken(id: $id) }", id="admin_token"),),
    "Mutation.replayDeadLetters": (
        refused('mutation { replayDeadLetters(queue: "background", filter: {}) { matched } }'),
    ),
    "Mutation.purgeDeadLetters": (
        refused('mutation { purgeDeadLetters(queue: "background", filter: {}) { matched } }'),
    ),
    "Mutation.addFlow": (refused(f"mutation {{ addFlow(flow: {FLOW_AB}) {{ id }} }}"),),
    "Mutation.addChain": (refused(f"mutation {{ addChain(steps: {STEPS_AB}) {{ id }} }}"),),
    "Mutation.saveSchedule": (
        refused(save_schedule("new", B)),
        refused(save_schedule("b-schedule", A)),  # replacing B's schedule by its key
    ),
    "Mutation.removeSchedule": (refused('mutation { removeSchedule(key: "b-schedule") }'),),
    "Mutation.saveTenant": (refused('mutation { saveTenant(id: "acme") { id } }'),),
    "Mutation.removeTenant": (refused('mutation { removeTenant(id: "acme") }'),),
    "Subscription.jobProgress": (refused('subscription { jobProgress(queue: "background", id: "b-job") { id } }'),),
    "Subscription.jobUpdates": (refused('subscription { jobUpdates(queue: "background", id: "b-job") { event } }'),),
    "Subscription.queueStats": (refused('subscription { queueStats(queueName: "background") { name } }'),),
    "Subscription.queueEvents": (refused('subscription { queueEvents(queue: "background") { id } }'),),
    "Subscription.workers": (hidden("subscription { workers { queues { name } } }"),),
    "Subscription.queueThroughput": (refused('subscription { queueThroughput(queue: "background") { completed } }'),),
    "Throughput.jobsPerSecond": (
        refused('subscription { queueThroughput(queue: "background", interval: 0.5) { jobsPerSecond } }'),
    ),
}


def resolved_fields() -> set[str]:
    """`Type.field` of every field of the schema that has its own resolver (root fields included)."""
    schema = build_schema()
    names = schema.config.name_converter
    found = set()
    for type_name, converted in schema.schema_converter.type_map.items():
        for definition in getattr(converted.definition, "fields", None) or ():
            if getattr(definition, "base_resolver", None) is not None:
                found.add(f"{type_name}.{names.get_graphql_name(definition)}")
    return found


def test_every_resolver_has_a_scope_rule() -> None:
    fields = resolved_fields()
    missing, stale = sorted(fields - RULES.keys()), sorted(RULES.keys() - fields)
    assert not missing, f"fields without a scope rule in RULES (say how a queue-scoped token is kept out): {missing}"
    assert not stale, f"RULES names fields the schema no longer has: {stale}"
    roots = {name.split(".")[0] for name in fields}
    assert {"Query", "Mutation", "Subscription"} <= roots


@dataclass
class Seed:
    """What queue B holds, reachable only by name, id or key: a delayed job `b-job`, schedule `b-schedule`, a
    completed child (result `secret-b`) of a parent in A, the parent of a dead-lettered child in A."""

    ids: dict[str, str]
    markers: tuple[str, ...]


async def seed(api: Api, app: Conveyor) -> Seed:
    await api.data(
        'mutation { addJob(queueName: "background", type: "ok", options: {jobId: "b-job", delay: 600000}) { id } }'
    )
    await api.data(save_schedule("b-schedule", B))
    child = '{queue: "background", type: "ok", data: {result: "secret-b"}}'
    flow = f'{{queue: "ai-processing", type: "ok", children: [{child}]}}'
    parent_a = (await api.data(f"mutation {{ addFlow(flow: {flow}) {{ id children {{ id }} }} }}"))["addFlow"]
    failing = (
        '{queue: "background", type: "ok", children: [{queue: "ai-processing", type: "fail", options: {attempts: 1}}]}'
    )
    parent_b = (await api.data(f"mutation {{ addFlow(flow: {failing}) {{ id children {{ id }} }} }}"))["addFlow"]
    child_b, child_a = parent_a["children"][0]["id"], parent_b["children"][0]["id"]
    async with running_worker(app, B):
        await wait_until(lambda: _runnable(app, parent_a["id"]))
    worker, _, _ = advanced(app.worker([A]))
    async with running(worker):
        await wait_until(lambda: _dead_letters(app, A))
    ids = {"parent_a": parent_a["id"], "child_a": child_a}
    return Seed(ids, (B, "b-job", "b-schedule", "secret-b", child_b, parent_b["id"]))


async def _runnable(app: Conveyor, job_id: str) -> bool:
    return await app.queue(A).state_of(job_id) in (JobState.WAITING, JobState.PRIORITIZED)


async def _dead_letters(app: Conveyor, queue: str) -> bool:
    return await DeadLetters.of(app, queue).count() > 0


async def state_of_b(app: Conveyor) -> Any:
    """Everything of B a refused mutation could have changed."""
    queue = app.queue(B)
    schedules = sorted((s.spec.key, s.spec.queue, s.spec.type) for s in await Schedules.of(app).all())
    tokens = len(await TokenStore(app.client, app.settings.conveyor_prefix).list())
    return await queue.counts(), await queue.state_of("b-job"), schedules, tokens


def errors_of(message: dict[str, Any]) -> list[dict[str, Any]]:
    payload = message.get("payload")
    if isinstance(payload, list):
        return payload
    return list((payload or {}).get("errors") or [])


async def answer(
    api: Api, token: str, case: Case, seeded: Seed, subscription: bool, within: float = 10
) -> dict[str, Any]:
    """The first answer to a case: the HTTP result, or the first websocket message's payload."""
    variables = {name: seeded.ids.get(key, key) for name, key in case.variables.items()}
    if not subscription:
        return await api.gql(case.document, variables, token=token)
    async with api.ws(token) as ws:
        await ws.subscribe(case.document, variables)
        message = await ws.receive(within=within)
        return {"errors": errors_of(message), "data": (message.get("payload") or {}).get("data")}


def leaks(result: dict[str, Any], seeded: Seed) -> list[str]:
    text = json.dumps(result.get("data"))
    return [marker for marker in seeded.markers if marker in text]


async def check(api: Api, token: str, name: str, case: Case, seeded: Seed) -> str | None:
    """What is wrong with one case (None: nothing)."""
    subscription = name.startswith("Subscription.") or "subscription" in case.document.split("{")[0]
    before = await state_of_b(api.app)
    result = await answer(api, token, case, seeded, subscription)
    codes = [error.get("extensions", {}).get("code") for error in result.get("errors") or []]
    if not case.hidden:
        changed = await state_of_b(api.app) != before
        if codes != ["FORBIDDEN"] or changed:
            return f"{name}: expected FORBIDDEN and B unchanged, got codes {codes} (B changed: {changed}): {result}"
        return None
    if codes or leaks(result, seeded):
        return f"{name}: expected an answer without B, got codes {codes} and {leaks(result, seeded)}: {result}"
    if case.control and not leaks(await answer(api, "admin", case, seeded, subscription), seeded):
        return f"{name}: the unscoped admin does not see B either, so the case proves nothing: {case.document}"
    return None


@pytest.fixture
async def scoped(api: Api, api_app: Conveyor) -> AsyncIterator[tuple[str, Seed]]:
    """An admin token limited to queue A, with B seeded and a worker serving both A and B."""
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    token = (await store.create("admin of A", "admin", [A])).token
    seeded = await seed(api, api_app)
    seeded.ids["admin_token"] = next(info.id for info in await store.list() if info.name == "test admin")
    async with running_worker(api_app, A, B):
        await wait_until(lambda: api_app.workers())
        yield token, seeded


async def test_a_token_scoped_to_one_queue_reaches_no_other_through_any_field(
    api: Api, scoped: tuple[str, Seed]
) -> None:
    token, seeded = scoped
    problems = [
        problem
        for name, cases in RULES.items()
        for case in cases
        if (problem := await check(api, token, name, case, seeded)) is not None
    ]
    assert not problems, "\n".join(problems)


# -- tenants ------------------------------------------------------------------------------------------------
# A tenant's token names queues as the deployment does ("background"), but each name means the tenant's own
# queue. So every case of RULES, sent with an admin token of tenant `acme` (every queue of its namespace), must
# leave the deployment's own queues unchanged and show none of what they hold: the same walk of the schema,
# with the deployment's seed as the thing to keep out.


async def state_of_deployment(app: Conveyor) -> Any:
    """Everything of the deployment's own A and B that a tenant's mutation could have changed."""
    return await state_of_b(app), await app.queue(A).counts()


async def check_tenant(api: Api, token: str, name: str, case: Case, seeded: Seed) -> str | None:
    """What is wrong with one case sent by a tenant's admin (None: nothing)."""
    subscription = name.startswith("Subscription.") or "subscription" in case.document.split("{")[0]
    before = await state_of_deployment(api.app)
    try:
        result = await answer(api, token, case, seeded, subscription, within=3)
    except TimeoutError:  # a subscription of the tenant's (idle) namespace has nothing to say yet
        result = {"data": None}
    if await state_of_deployment(api.app) != before:
        return f"{name}: a tenant's request changed the deployment's own queues: {case.document} -> {result}"
    # The queue name and the tenant's own echo of a key it was sent are no leak; what only the seed holds is.
    shown = [marker for marker in leaks(result, seeded) if marker not in (B, "b-schedule")]
    if shown:
        return f"{name}: a tenant's answer shows the deployment's {shown}: {result}"
    return None


@pytest.fixture
async def tenant_token(api: Api, api_app: Conveyor) -> AsyncIterator[tuple[str, Seed]]:
    """An admin token of tenant `acme`, with the deployment's own B (and A) seeded and a worker serving them."""
    prefix = api_app.settings.conveyor_prefix
    await TenantStore(api_app.client, prefix).save("acme", tenant_quotas())
    token = (await TokenStore(api_app.client, prefix).create("acme admin", "admin", tenant="acme")).token
    seeded = await seed(api, api_app)
    seeded.ids["admin_token"] = next(
        info.id for info in await TokenStore(api_app.client, prefix).list() if info.name == "test admin"
    )
    async with running_worker(api_app, A, B):
        await wait_until(lambda: api_app.workers())
        yield token, seeded


async def test_a_tenants_token_reaches_nothing_of_the_deployment_through_any_field(
    api: Api, tenant_token: tuple[str, Seed]
) -> None:
    token, seeded = tenant_token
    problems = [
        problem
        for name, cases in RULES.items()
        for case in cases
        if (problem := await check_tenant(api, token, name, case, seeded)) is not None
    ]
    assert not problems, "\n".join(problems)
