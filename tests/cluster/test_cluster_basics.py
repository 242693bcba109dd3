"""Conveyor on a Redis Cluster: each queue's keys in one slot, queues spread over the shards, and the core path
(enqueue, bulk enqueue, a worker that runs the jobs) working end to end. The rest of the worker (retries, delays,
priorities, limits) is covered by the single-server suites run again on the cluster (test_suites.py)."""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from conveyor import Conveyor, JobContext, JobState, NewJob, SyncConveyor, load_settings
from conveyor.redis.cluster import is_cluster
from conveyor.redis.connection import RedisTarget
from conveyor.redis.keys import QueueKeys
from tests.cluster.servers import TestCluster
from tests.support import running, wait_until


async def _state_is(app: Conveyor, queue: str, job_id: str, state: JobState) -> bool:
    return await app.queue(queue).state_of(job_id) is state


async def test_cluster_app_uses_a_cluster_client_and_hash_tagged_keys(cluster_app: Conveyor) -> None:
    assert is_cluster(cluster_app.client)
    keys = cluster_app.queue("indexing").keys
    assert keys.wait == "bull:{indexing}:wait"
    assert keys.job("7") == "bull:{indexing}:7"
    assert cluster_app.queue("indexing").conveyor_keys.workers == "bull:{conveyor}:workers"


async def test_each_queue_sits_in_one_slot_and_queues_spread_over_the_primaries(
    cluster_app: Conveyor, redis_cluster: TestCluster
) -> None:
    client = cluster_app.client
    assert isinstance(client, RedisCluster)
    owners = set()
    for name in (f"q{i}" for i in range(12)):
        keys = QueueKeys("bull", name, tagged=True)
        slots = {client.keyslot(key) for key in (keys.wait, keys.meta, keys.job("1"), keys.lock("1"))}
        slots.add(client.keyslot(keys.fetch_lease("token")))
        assert len(slots) == 1
        owners.add(redis_cluster.owner_of(keys.wait).port)
    assert len(owners) == 3


async def test_jobs_added_one_by_one_and_in_bulk_run_on_a_cluster(cluster_app: Conveyor) -> None:
    ran: list[str] = []

    for queue in ("indexing", "background"):

        @cluster_app.handler(queue, "note")
        async def note(payload: dict[str, Any], ctx: JobContext) -> int:
            ran.append(ctx.job.id)
            return int(payload["n"])

    async with running(cluster_app.worker(["indexing", "background"])):
        one = await cluster_app.add("indexing", "note", {"n": 1})
        bulk = await cluster_app.queue("background").add_bulk([NewJob("note", {"n": n}) for n in range(50)])
        await wait_until(lambda: len(ran) == 51)
        await wait_until(lambda: _state_is(cluster_app, "indexing", one, JobState.COMPLETED))
    assert sorted(ran) == sorted([one, *bulk])
    job = await cluster_app.queue("indexing").get_job(one)
    assert job.result == 1


def test_the_sync_facade_and_the_sync_client_work_on_a_cluster(cluster_nodes: str) -> None:
    facade = SyncConveyor(Conveyor(load_settings(redis_cluster_nodes=cluster_nodes)))
    try:
        job_id = facade.add("background", "anything", {"n": 1})
        assert facade.get_job("background", job_id).data == {"n": 1}
    finally:
        facade.close()
    target = RedisTarget.from_settings(load_settings(redis_cluster_nodes=cluster_nodes))
    assert target is not None
    client = target.sync_client()
    try:
        assert is_cluster(client)
        assert client.exists("bull:{background}:" + job_id) == 1
    finally:
        client.close()
