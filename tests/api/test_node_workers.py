"""GraphQL `workers` lists Node BullMQ workers of visible queues, marked `runtime: "bullmq"`; a Node worker of a
queue the caller may not see is left out like any other worker."""

from __future__ import annotations

from conveyor import Conveyor
from conveyor.api.tokens import TokenStore
from tests.api.conftest import Api
from tests.queue.node_env import install, node_process

QUERY = "{ workers { name runtime pid queues { name concurrency active } } }"


async def test_workers_lists_a_node_worker_marked_as_bullmq(api: Api, redis_url: str) -> None:
    node = install("bullmq-6")
    with node_process(node, redis_url, "idle_worker.mjs", "background", "node-a"):
        data = await api.data(QUERY)
    [worker] = data["workers"]
    assert worker == {
        "name": "node-a",
        "runtime": "bullmq",
        "pid": 0,
        "queues": [{"name": "background", "concurrency": 0, "active": 0}],
    }


async def test_a_node_worker_of_a_queue_outside_the_tokens_scope_is_hidden(
    api: Api, api_app: Conveyor, redis_url: str
) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    scoped = (await store.create("x", "viewer", ["background"], known_queues=api_app.queue_names)).token
    node = install("bullmq-6")
    with node_process(node, redis_url, "idle_worker.mjs", "indexing", "node-b"):
        assert (await api.data(QUERY, token=scoped))["workers"] == []
        assert [w["name"] for w in (await api.data(QUERY))["workers"]] == ["node-b"]
