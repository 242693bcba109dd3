"""The GraphQL API of dead letters, flows (a job's children and parent), schedules and tenants."""

from __future__ import annotations

from typing import Any

from conveyor import Conveyor, JobState
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.schedules import Schedules
from conveyor.queue.tenants import TenantStore
from tests.advanced.conftest import advanced, running, state_is, wait_until
from tests.api.conftest import Api, code_of

LETTERS = """query($filter: DeadLetterFilterInput) { deadLetters(queue: "background", filter: $filter) {
    total hasMore nodes { jobId type data failedReason attemptsMade history { attempt error } } } }"""
REPLAY = """mutation($ids: [ID!], $filter: DeadLetterFilterInput, $dry: Boolean!) {
    replayDeadLetters(queue: "background", ids: $ids, filter: $filter, dryRun: $dry) {
        matched replayed dryRun newJobIds failures { id } } }"""
PURGE = """mutation($ids: [ID!], $filter: DeadLetterFilterInput) {
    purgeDeadLetters(queue: "background", ids: $ids, filter: $filter) { matched purged } }"""


async def dead_letters(app: Conveyor, *reasons: str) -> list[str]:
    """Run `fail` jobs to their end, one after the other (so the letters are in this order), and wait until each
    is a dead letter; returns their ids."""
    worker, _, _ = advanced(app.worker(["background"]))
    dlq = DeadLetters.of(app, "background")
    ids: list[str] = []
    async with running(worker):
        for reason in reasons:
            ids.append(await app.add("background", "fail", {"reason": reason}))
            await wait_until(lambda: _count(dlq, len(ids)))
    return ids


async def _count(dlq: DeadLetters, expected: int) -> bool:
    return await dlq.count() == expected


async def test_dead_letters_are_listed_filtered_and_inspected(api: Api, api_app: Conveyor) -> None:
    first, second = await dead_letters(api_app, "disk full", "timeout")
    page = (await api.data(LETTERS, token="viewer"))["deadLetters"]
    assert page["total"] == 2
    assert [node["jobId"] for node in page["nodes"]] == [second, first]
    filtered = (await api.data(LETTERS, {"filter": {"search": "DISK"}}))["deadLetters"]["nodes"]
    assert [(n["jobId"], n["failedReason"], n["history"][0]["attempt"]) for n in filtered] == [
        (first, "RuntimeError: disk full", 1)
    ]
    one = await api.data(
        'query($id: ID!) { deadLetter(queue: "background", id: $id) { data stacktrace } }', {"id": first}
    )
    assert one["deadLetter"]["data"] == {"reason": "disk full"}
    assert "RuntimeError: disk full" in one["deadLetter"]["stacktrace"][0]
    assert (await api.data('{ deadLetter(queue: "background", id: "nope") { jobId } }'))["deadLetter"] is None


async def test_replay_previews_then_replays_by_filter_and_needs_an_operator(api: Api, api_app: Conveyor) -> None:
    await dead_letters(api_app, "a", "b", "c")
    variables: dict[str, Any] = {"filter": {}, "dry": True}
    assert code_of(await api.gql(REPLAY, variables, token="viewer")) == "FORBIDDEN"
    preview = (await api.data(REPLAY, variables, token="operator"))["replayDeadLetters"]
    assert (preview["matched"], preview["replayed"], preview["dryRun"]) == (3, 0, True)
    done = (await api.data(REPLAY, {**variables, "dry": False}, token="operator"))["replayDeadLetters"]
    assert done["replayed"] == 3
    assert len(done["newJobIds"]) == 3
    assert (await api_app.queue("background").counts()).pending == 3
    assert await DeadLetters.of(api_app, "background").count() == 0


async def test_replay_or_purge_without_a_selection_is_refused(api: Api) -> None:
    assert code_of(await api.gql(REPLAY, {"dry": False})) == "BAD_USER_INPUT"
    assert code_of(await api.gql(PURGE, {})) == "BAD_USER_INPUT"


async def test_purge_deletes_selected_letters(api: Api, api_app: Conveyor) -> None:
    ids = await dead_letters(api_app, "x", "y")
    result = (await api.data(PURGE, {"ids": [ids[0], "unknown"]}, token="operator"))["purgeDeadLetters"]
    assert result == {"matched": 1, "purged": 1}
    assert [letter.job_id for letter in await DeadLetters.of(api_app, "background").letters()] == [ids[1]]


FLOW = """mutation($flow: FlowJobInput!) { addFlow(flow: $flow) { id state
    children { id queue state parent { id } } } }"""
TREE = """query($id: ID!) { job(queue: "background", id: $id) { state result childrenResults
    children { queue state result parent { id } } } }"""


async def test_a_flow_added_through_the_api_reads_back_as_a_tree(api: Api, api_app: Conveyor) -> None:
    flow = {
        "queue": "background",
        "type": "ok",
        "data": {"result": "parent"},
        "children": [
            {"queue": "indexing", "type": "ok", "data": {"result": 1}},
            {"queue": "ai-processing", "type": "ok", "data": {"result": 2}, "onFailure": "IGNORE"},
        ],
    }
    root = (await api.data(FLOW, {"flow": flow}, token="operator"))["addFlow"]
    assert root["state"] == "WAITING_CHILDREN"
    assert sorted((c["queue"], c["state"], c["parent"]["id"]) for c in root["children"]) == [
        ("ai-processing", "WAITING", root["id"]),
        ("indexing", "WAITING", root["id"]),
    ]
    worker, _, _ = advanced(api_app.worker(["background", "indexing", "ai-processing"]))
    async with running(worker):
        await wait_until(lambda: state_is(api_app.queue("background"), root["id"], JobState.COMPLETED))
    job = (await api.data(TREE, {"id": root["id"]}))["job"]
    assert sorted(job["childrenResults"].values()) == [1, 2]
    assert sorted(child["result"] for child in job["children"]) == [1, 2]


async def test_a_chain_added_through_the_api_runs_in_order(api: Api, api_app: Conveyor) -> None:
    chain = """mutation($steps: [FlowJobInput!]!) { addChain(steps: $steps) { id queue state } }"""
    steps = [{"queue": "indexing", "type": "ok"}, {"queue": "background", "type": "ok"}]
    first, last = (await api.data(chain, {"steps": steps}, token="operator"))["addChain"]
    assert (first["queue"], first["state"], last["state"]) == ("indexing", "WAITING", "WAITING_CHILDREN")
    parent = await api.data(
        'query($id: ID!) { job(queue: "indexing", id: $id) { parent { id } } }', {"id": first["id"]}
    )
    assert parent["job"]["parent"]["id"] == last["id"]


async def test_a_flow_needs_an_operator_on_every_queue_it_touches(api: Api, api_app: Conveyor) -> None:
    store = api.app.client
    from conveyor.api import TokenStore

    scoped = (await TokenStore(store, "bull").create("scoped", "operator", ["background"])).token
    flow = {"queue": "background", "type": "ok", "children": [{"queue": "indexing", "type": "ok"}]}
    assert code_of(await api.gql(FLOW, {"flow": flow}, token=scoped)) == "FORBIDDEN"
    assert (await api_app.queue("background").counts()).waiting_children == 0


SAVE = """mutation($s: ScheduleInput!) { saveSchedule(schedule: $s) { key queue cron everyMs tz catchUp nextRun } }"""


async def test_schedules_are_saved_idempotently_listed_and_removed(api: Api, api_app: Conveyor) -> None:
    spec = {"key": "nightly", "queue": "background", "type": "ok", "cron": "0 0 3 * * *", "tz": "Europe/Paris"}
    first = (await api.data(SAVE, {"s": spec}, token="operator"))["saveSchedule"]
    again = (await api.data(SAVE, {"s": spec}, token="operator"))["saveSchedule"]
    assert first == again
    assert first["catchUp"] == "ONCE"
    listed = (await api.data("{ schedules { key nextRun } }", token="viewer"))["schedules"]
    assert listed == [{"key": "nightly", "nextRun": first["nextRun"]}]
    bad = await api.gql(SAVE, {"s": {**spec, "cron": "every day"}}, token="operator")
    assert code_of(bad) == "INVALID_OPTIONS"
    assert (await api.data('mutation { removeSchedule(key: "nightly") }', token="operator"))["removeSchedule"]
    assert await Schedules.of(api_app).all() == []


async def test_tenants_are_managed_by_deployment_admins_only(api: Api, api_app: Conveyor) -> None:
    save = """mutation { saveTenant(id: "acme", quotas: { maxWaitingJobs: 5, rateLimit: { max: 10, durationMs: 1000 } })
        { id prefix maxWaitingJobs rateLimit { max durationMs } } }"""
    assert code_of(await api.gql(save, token="operator")) == "FORBIDDEN"
    saved = (await api.data(save))["saveTenant"]
    assert saved == {
        "id": "acme", "prefix": "bull:t:acme", "maxWaitingJobs": 5, "rateLimit": {"max": 10, "durationMs": 1000}
    }  # fmt: skip
    assert (await api.data("{ tenants { id } }"))["tenants"] == [{"id": "acme"}]
    token = 'mutation { createApiToken(name: "ops", role: OPERATOR, tenant: "acme") { token info { tenant } } }'
    assert (await api.data(token))["createApiToken"]["info"]["tenant"] == "acme"
    unknown = 'mutation { createApiToken(name: "x", role: VIEWER, tenant: "nobody") { token } }'
    assert code_of(await api.gql(unknown)) == "BAD_USER_INPUT"
    assert (await api.data('mutation { removeTenant(id: "acme") }'))["removeTenant"]
    assert await TenantStore(api_app.client, "bull").all() == []
