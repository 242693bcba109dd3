"""Housekeeping over GraphQL: clean finished jobs older than a grace period, promote every delayed job, Redis
info; and the read-only dashboard setting, under which the server refuses mutations from browsers."""

from __future__ import annotations

import time

import pytest

from conveyor import Conveyor, JobState, NewJob
from conveyor.queue.options import JobOptions
from tests.api.conftest import Api, StartApi, code_of, running_worker
from tests.support import wait_until

CLEAN = """mutation($state: JobState!, $ms: Int!) {
  cleanJobs(queue: "background", state: $state, olderThanMs: $ms) { removed jobIds }
}"""
ADD = 'mutation { addJob(queueName: "background", type: "ok") { id } }'


async def _finish(app: Conveyor, count: int) -> list[str]:
    ids = await app.add_bulk("background", [NewJob("ok", {"n": n}) for n in range(count)])
    async with running_worker(app, "background"):
        await wait_until(lambda: _completed(app, count))
    return ids


async def _completed(app: Conveyor, count: int) -> bool:
    return (await app.queue("background").counts()).completed == count


async def _finished_an_hour_ago(app: Conveyor, job_id: str) -> None:
    queue = app.queue("background")
    hour_ago = int(time.time() * 1000) - 3_600_000
    await app.client.hset(queue.keys.job(job_id), "finishedOn", hour_ago)
    await app.client.zadd(queue.keys.completed, {job_id: hour_ago})


async def test_clean_deletes_only_finished_jobs_past_the_grace_period(api: Api, api_app: Conveyor) -> None:
    old, old2, recent = await _finish(api_app, 3)
    for job_id in (old, old2):
        await _finished_an_hour_ago(api_app, job_id)

    result = (await api.data(CLEAN, {"state": "COMPLETED", "ms": 600_000}))["cleanJobs"]
    assert result["removed"] == 2
    assert sorted(result["jobIds"]) == sorted([old, old2])
    queue = api_app.queue("background")
    assert await queue.state_of(recent) is JobState.COMPLETED
    assert await queue.state_of(old) is JobState.UNKNOWN

    assert (await api.data(CLEAN, {"state": "FAILED", "ms": 0}))["cleanJobs"]["removed"] == 0
    assert code_of(await api.gql(CLEAN, {"state": "ACTIVE", "ms": 0})) == "BAD_USER_INPUT"
    assert code_of(await api.gql(CLEAN, {"state": "COMPLETED", "ms": 0}, token="viewer")) == "FORBIDDEN"


async def test_promote_delayed_jobs_runs_each_now_keeping_its_priority(api: Api, api_app: Conveyor) -> None:
    later = JobOptions(delay_ms=600_000)
    urgent = JobOptions(delay_ms=600_000, priority="critical")
    await api_app.add_bulk("background", [NewJob("ok", {}, later), NewJob("ok", {}, later), NewJob("ok", {}, urgent)])
    promoted = await api.data('mutation { promoteDelayedJobs(queue: "background") }')
    assert promoted["promoteDelayedJobs"] == 3
    counts = await api_app.queue("background").counts()
    assert counts.delayed == 0
    assert counts.waiting == 3
    first = await api_app.queue("background").jobs(JobState.PRIORITIZED, 0, 10)
    assert any(job.priority == 1 for job in first)


async def test_redis_info_describes_the_server(api: Api) -> None:
    info = (
        await api.data(
            "{ redisInfo { version mode role uptimeSeconds connectedClients usedMemoryBytes maxMemoryBytes "
            "evictionPolicy } }",
            token="viewer",
        )
    )["redisInfo"]
    assert info["version"][0].isdigit()
    assert info["connectedClients"] >= 1
    assert info["usedMemoryBytes"] > 0
    assert info["evictionPolicy"]


async def test_a_read_only_dashboard_makes_the_server_refuse_writes_from_browsers(
    start_api: StartApi, api_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DASHBOARD_READ_ONLY", "1")
    api = await start_api()
    browser = {"Origin": f"http://127.0.0.1:{api.server.port}", "Sec-Fetch-Mode": "cors"}
    refused = (await api.post({"query": ADD}, token="operator", headers=browser)).json()
    assert code_of(refused) == "FORBIDDEN"
    assert "read-only" in refused["errors"][0]["message"]
    assert (await api_app.queue("background").counts()).prioritized == 0

    reads = (await api.post({"query": "{ queues { name } }"}, token="operator", headers=browser)).json()
    assert "errors" not in reads
    assert (await api.data(ADD, token="operator"))["addJob"]["id"]  # the CLI and API clients still write


async def test_a_read_only_dashboard_refuses_mutations_over_a_browsers_websocket(
    start_api: StartApi, api_app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVEYOR_DASHBOARD_READ_ONLY", "1")
    api = await start_api()
    async with api.ws("operator", origin=f"http://127.0.0.1:{api.server.port}") as ws:
        await ws.subscribe(ADD)
        message = await ws.receive(within=10)
    errors = message["payload"] if isinstance(message["payload"], list) else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api_app.queue("background").counts()).prioritized == 0
