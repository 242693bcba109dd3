"""Subscriptions over graphql-transport-ws, fed by Redis streams: from worker processes, across API
servers, resumable after a reconnect."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conveyor import Conveyor
from tests.api.conftest import Api, StartApi, WorkerProcesses, code_of
from tests.api.test_mutations import add

PROGRESS = 'subscription($id: ID!) { jobProgress(queue: "background", id: $id) { id state progress } }'
UPDATES = """subscription($id: ID!) { jobUpdates(queue: "background", id: $id) {
    event eventId newLogs job { state progress } } }"""
EVENTS = 'subscription($since: String) { queueEvents(queue: "background", since: $since) { id event jobId fields } }'
STATS = 'subscription { queueStats(queueName: "background") { prioritized active completed isPaused } }'


async def last_event_id(api: Api) -> str:
    """The queue's newest event id: subscribing after it misses nothing that happens from now on."""
    since: str = (await api.data('{ queue(name: "background") { lastEventId } }'))["queue"]["lastEventId"]
    return since


async def collect_until_complete(ws: Any, op: str, within: float = 30) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await ws.receive(within)
        assert message["id"] == op, message
        if message["type"] == "complete":
            return messages
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        messages.append(message["payload"]["data"])


async def test_job_progress_from_a_worker_in_another_process(api: Api, worker_processes: WorkerProcesses) -> None:
    job = await add(api, "background", "steps", {"steps": 4, "pause": 0.3})
    async with api.ws("viewer") as ws:
        op = await ws.subscribe(PROGRESS, {"id": job["id"]})
        first = await ws.next_data(op)
        assert first["jobProgress"]["state"] == "WAITING"
        worker_processes.start("background")
        updates = [m["jobProgress"] for m in await collect_until_complete(ws, op)]
    progress = [u["progress"] for u in updates]
    assert progress == sorted(progress)
    assert {25, 50, 75} <= set(progress)
    assert updates[-1] == {"id": job["id"], "state": "COMPLETED", "progress": 100}


async def test_job_updates_carry_events_and_new_log_lines(api: Api, worker_processes: WorkerProcesses) -> None:
    job = await add(api, "background", "steps", {"steps": 2, "pause": 0.3})
    async with api.ws() as ws:
        op = await ws.subscribe(UPDATES, {"id": job["id"]})
        assert (await ws.next_data(op))["jobUpdates"]["event"] == "snapshot"
        worker_processes.start("background")
        updates = [m["jobUpdates"] for m in await collect_until_complete(ws, op)]
    events = [u["event"] for u in updates]
    assert "active" in events
    assert events[-1] == "completed"
    assert [line for u in updates for line in u["newLogs"]] == ["step 1", "step 2"]
    assert updates[-1]["job"]["state"] == "COMPLETED"


async def test_job_progress_of_a_missing_job_is_an_error(api: Api) -> None:
    async with api.ws() as ws:
        op = await ws.subscribe(PROGRESS, {"id": "404"})
        message = await ws.receive()
    assert message["id"] == op
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "JOB_NOT_FOUND"


async def test_job_progress_takes_job_id_as_the_design_note_writes_it(
    api: Api, worker_processes: WorkerProcesses
) -> None:
    job = await add(api, "background", "steps", {"steps": 2, "pause": 0.2})
    design = "subscription JobProgress($jobId: ID!) { jobProgress(jobId: $jobId) { id state progress } }"
    async with api.ws("viewer") as ws:
        op = await ws.subscribe(design, {"jobId": job["id"]})
        assert (await ws.next_data(op))["jobProgress"]["id"] == job["id"]
        worker_processes.start("background")
        updates = [m["jobProgress"] for m in await collect_until_complete(ws, op)]
    assert updates[-1] == {"id": job["id"], "state": "COMPLETED", "progress": 100}


async def test_job_progress_needs_exactly_one_of_id_and_job_id(api: Api) -> None:
    both = 'subscription { jobProgress(id: "a", jobId: "a") { id } }'
    async with api.ws() as ws:
        op = await ws.subscribe(both)
        message = await ws.receive()
    assert message["id"] == op
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_queue_stats_are_merged_and_throttled(api: Api) -> None:
    async with api.ws() as ws:
        op = await ws.subscribe(STATS)
        assert (await ws.next_data(op))["queueStats"]["prioritized"] == 0
        started = time.monotonic()
        for _ in range(40):
            await add(api)
        updates = []
        while not updates or updates[-1]["prioritized"] < 40:
            updates.append((await ws.next_data(op))["queueStats"])
        elapsed = time.monotonic() - started
    assert len(updates) <= elapsed / 0.25 + 2  # at most one update per 0.25 s (+ the edges)
    assert len(updates) < 40


async def test_queue_stats_follow_pause(api: Api) -> None:
    async with api.ws() as ws:
        op = await ws.subscribe(STATS)
        await ws.next_data(op)
        await api.data('mutation { pauseQueue(name: "background") }')
        assert (await ws.next_data(op))["queueStats"]["isPaused"] is True


async def test_queue_events_resume_after_reconnect_without_gaps(api: Api) -> None:
    async with api.ws() as ws:
        op = await ws.subscribe(EVENTS, {"since": await last_event_id(api)})
        first = await add(api)
        seen = [(await ws.next_data(op))["queueEvents"] for _ in range(2)]  # added, waiting
    assert {e["jobId"] for e in seen} == {first["id"]}
    missed = [(await add(api))["id"] for _ in range(3)]
    async with api.ws() as ws:
        op = await ws.subscribe(EVENTS, {"since": seen[-1]["id"]})
        resumed = [(await ws.next_data(op))["queueEvents"] for _ in range(6)]
        live = await add(api)
        after = [(await ws.next_data(op))["queueEvents"] for _ in range(2)]
    assert [e["jobId"] for e in resumed] == [m for m in missed for _ in range(2)]
    assert [e["event"] for e in resumed] == ["added", "waiting"] * 3
    ids = [e["id"] for e in seen + resumed + after]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == len(ids)
    assert {e["jobId"] for e in after} == {live["id"]}


async def test_queue_events_reports_events_lost_to_trimming(api: Api, api_app: Conveyor) -> None:
    await add(api)
    stream = api_app.queue("background").keys.events
    [(since, _)] = await api_app.client.xrange(stream, count=1)
    for _ in range(3):
        await add(api)
    await api_app.client.xtrim(stream, maxlen=2, approximate=False)
    async with api.ws() as ws:
        op = await ws.subscribe(EVENTS, {"since": since})
        gap = (await ws.next_data(op))["queueEvents"]
        nxt = (await ws.next_data(op))["queueEvents"]
    assert gap["event"] == "events-lost"
    assert nxt["id"] == gap["fields"]["firstAvailable"]


async def test_queue_events_refuses_a_bad_event_id(api: Api) -> None:
    async with api.ws() as ws:
        op = await ws.subscribe(EVENTS, {"since": "yesterday"})
        message = await ws.receive()
    assert message["id"] == op
    assert message["payload"]["errors"][0]["extensions"]["code"] == "INVALID_EVENT_ID"


async def test_updates_reach_subscribers_of_another_api_server(start_api: StartApi) -> None:
    one, two = await start_api(), await start_api()
    async with two.ws() as ws:
        op = await ws.subscribe(EVENTS, {"since": await last_event_id(two)})
        job = await add(one)
        event = (await ws.next_data(op))["queueEvents"]
    assert (event["event"], event["jobId"]) == ("added", job["id"])


async def test_subscriptions_per_connection_are_capped(start_api: StartApi) -> None:
    api = await start_api(max_subscriptions_per_connection=2)
    async with api.ws() as ws:
        ops = [await ws.subscribe(STATS) for _ in range(2)]
        first: set[str] = set()
        while first != set(ops):  # each one's first data, in whichever order the server sent them
            message = await ws.receive()
            assert (message["id"] in ops, message["type"]) == (True, "next"), message
            assert "errors" not in message["payload"], message
            first.add(message["id"])
        third = await ws.subscribe(STATS)
        message = await ws.receive()
        while message["id"] in ops and message["type"] == "next":  # an update of a live one may come first
            message = await ws.receive()
    assert (message["id"], message["type"]) == (third, "error")
    assert code_of({"errors": message["payload"]}) == "SUBSCRIPTION_LIMIT"


async def test_completing_a_subscription_releases_its_slot(start_api: StartApi) -> None:
    api = await start_api(max_subscriptions_per_connection=1)
    async with api.ws() as ws:
        op = await ws.subscribe(STATS)
        await ws.next_data(op)
        await ws.complete(op)
        await asyncio.sleep(0.1)
        again = await ws.subscribe(STATS)
        assert "queueStats" in await ws.next_data(again)
