"""Durable mode (`CONVEYOR_REDIS_WAIT_REPLICAS`): an enqueue returns only once replicas hold the job. With the
replica stopped, every kind of acknowledged write (add, bulk add, flow, schedule) raises a typed error that says
the write stands on the master, and adding again with the same id once the replica is back adds nothing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from graphql import GraphQLError

from conveyor import Conveyor, JobOptions, NewJob, Queue, load_settings
from conveyor.api.errors import describe
from conveyor.cli.errors import ExitCode, exit_code_for
from conveyor.queue.errors import EnqueueNotReplicatedError, ScheduleNotReplicatedError
from conveyor.queue.flows import FlowJob, Flows
from conveyor.queue.job import JobState
from conveyor.queue.schedules import Schedules
from tests.faults.sentinel_set import SentinelSet, sentinel_set_fixture  # noqa: F401 (the fixture `sentinel_set`)
from tests.support import running, wait_until

TIMEOUT_MS = 300


@pytest.fixture
async def durable_app(sentinel_set: SentinelSet) -> AsyncIterator[Conveyor]:
    settings = load_settings(
        _env_file=None,
        redis_sentinels=sentinel_set.sentinels_setting,
        conveyor_redis_wait_replicas=1,
        conveyor_redis_wait_timeout_ms=TIMEOUT_MS,
    )
    app = Conveyor(settings)
    await app.connect()
    yield app
    await app.close()


async def test_durable_add_returns_once_the_replica_holds_the_job(
    durable_app: Conveyor, sentinel_set: SentinelSet
) -> None:
    job_id = await durable_app.add("background", "noop", {"n": 1})
    replica = sentinel_set.replica_of(sentinel_set.master())
    with replica.client() as client:  # WAIT returned 1: the replica has it already, no polling needed
        assert client.exists(f"bull:background:{job_id}") == 1


async def test_durable_add_without_a_replica_raises_and_says_the_job_is_on_the_master(
    durable_app: Conveyor, sentinel_set: SentinelSet
) -> None:
    master = sentinel_set.master()
    sentinel_set.replica_of(master).stop()
    await asyncio.to_thread(_until_no_replica, sentinel_set)
    began = time.monotonic()
    with pytest.raises(EnqueueNotReplicatedError) as raised:
        await durable_app.add("background", "noop", {"n": 1}, job_id="durable-1")
    assert time.monotonic() - began < TIMEOUT_MS / 1000 + 2
    error = raised.value
    assert error.job_ids == ["durable-1"]
    assert error.acknowledged == 0
    for promise in ("on the master", "will run unless the master fails", "same job id", "1 replica within 300 ms"):
        assert promise in str(error)
    # What the message says: the job is in the queue (on the master), pending like any other.
    assert await durable_app.queue("background").state_of("durable-1") is JobState.WAITING

    with pytest.raises(EnqueueNotReplicatedError) as bulk:
        await durable_app.add_bulk(
            "background", [NewJob("noop", {"n": i}, JobOptions(job_id=f"b{i}")) for i in range(3)]
        )
    assert bulk.value.job_ids == ["b0", "b1", "b2"]
    with pytest.raises(EnqueueNotReplicatedError) as flow:
        await Flows.of(durable_app).add(
            FlowJob("background", "parent", children=[FlowJob("background", "child")], options=JobOptions(job_id="p"))
        )
    assert flow.value.job_ids[0] == "p"
    assert len(flow.value.job_ids) == 2
    with pytest.raises(ScheduleNotReplicatedError, match="saved on the Redis master"):
        await Schedules.of(durable_app).add(key="nightly", queue="background", type="noop", every_ms=60_000)


async def test_adding_again_once_the_replica_is_back_adds_nothing_and_succeeds(
    durable_app: Conveyor, sentinel_set: SentinelSet
) -> None:
    master = sentinel_set.master()
    replica = sentinel_set.replica_of(master)
    replica.stop()
    await asyncio.to_thread(_until_no_replica, sentinel_set)
    with pytest.raises(EnqueueNotReplicatedError):
        await durable_app.add("background", "noop", {"n": 1}, job_id="again")
    replica.start()
    await asyncio.to_thread(sentinel_set.wait_until_replicated, master, 1)
    assert await durable_app.add("background", "noop", {"n": 1}, job_id="again") == "again"
    counts = await durable_app.queue("background").counts()
    assert counts.pending == 1


def _until_no_replica(servers: SentinelSet) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with servers.master().client() as client:
            if client.info("replication")["connected_slaves"] == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the master still lists a replica")


async def test_a_completion_without_a_replica_stands_and_the_worker_warns(
    durable_app: Conveyor, sentinel_set: SentinelSet, caplog: pytest.LogCaptureFixture
) -> None:
    @durable_app.handler("background", "noop")
    async def noop(payload: object) -> str:
        return "done"

    sentinel_set.replica_of(sentinel_set.master()).stop()
    await asyncio.to_thread(_until_no_replica, sentinel_set)
    with pytest.raises(EnqueueNotReplicatedError):
        await durable_app.add("background", "noop", {}, job_id="lonely")
    queue = durable_app.queue("background")
    with caplog.at_level(logging.WARNING, logger="conveyor.worker.attempt"):
        async with running(durable_app.worker(["background"])):
            await wait_until(lambda: _completed(queue, "lonely"), timeout=10)
    assert any("lonely" in r.getMessage() and "not acknowledged by 1 replica" in r.getMessage() for r in caplog.records)


async def _completed(queue: Queue, job_id: str) -> bool:
    return await queue.state_of(job_id) is JobState.COMPLETED


def test_the_api_and_the_cli_report_a_shortfall_with_the_job_ids() -> None:
    error = EnqueueNotReplicatedError("sentinel master 'mymaster' (db 0)", ["j1"], 0, "1 replica within 300 ms")
    message, extensions = describe(GraphQLError("failed", path=["addJob"], original_error=error))
    assert extensions == {"code": "NOT_REPLICATED", "jobIds": ["j1"]}
    assert "on the master" in message
    assert exit_code_for(error) is ExitCode.UNAVAILABLE
