"""Features whose cluster behaviour differs from one server's, or that the adopted suites do not reach: flows
within one queue (and a clear refusal across queues), job search, cluster-wide metrics, API tokens, and a cancel
request reaching a worker through cluster pub/sub."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, NewJob
from conveyor.api.tokens import TokenStore
from conveyor.observability import instrument, metrics_asgi_app
from conveyor.queue.flows import FlowError, FlowJob, Flows
from conveyor.queue.search import JobFilter, scan_jobs
from tests.observability.scraping import asgi_get, parse, value
from tests.support import running, wait_until


async def _state_is(app: Conveyor, queue: str, job_id: str, state: JobState) -> bool:
    return await app.queue(queue).state_of(job_id) is state


def _flow_handlers(app: Conveyor, queue: str) -> list[str]:
    flows = Flows.of(app)
    ran: list[str] = []

    @app.handler(queue, "sum")
    async def total(payload: dict[str, Any], ctx: JobContext) -> int:
        ran.append(ctx.job.id)
        results = await flows.children_results(ctx.job.queue, ctx.job.id)
        return sum(int(result) for result in results.values()) + int(payload.get("add", 0))

    @app.handler(queue, "inc")
    async def inc(payload: dict[str, Any], ctx: JobContext) -> int:
        ran.append(ctx.job.id)
        previous = await flows.previous_result(ctx.job.queue, ctx.job.id)
        return int(payload.get("start", 0) if previous is None else previous) + 1

    return ran


async def test_a_flow_within_one_queue_runs_its_parent_after_its_children(cluster_app: Conveyor) -> None:
    _flow_handlers(cluster_app, "indexing")
    leaf = [FlowJob("indexing", "sum", {"add": n}) for n in (1, 2, 3)]
    tree = await Flows.of(cluster_app).add(FlowJob("indexing", "sum", {"add": 10}, children=leaf))
    async with running(cluster_app.worker(["indexing"])):
        await wait_until(lambda: _state_is(cluster_app, "indexing", tree.job_id, JobState.COMPLETED))
    assert (await cluster_app.queue("indexing").get_job(tree.job_id)).result == 16


async def test_a_chain_within_one_queue_runs_in_order(cluster_app: Conveyor) -> None:
    ran = _flow_handlers(cluster_app, "background")
    ids = await Flows.of(cluster_app).add_chain([FlowJob("background", "inc", {"start": 10}) for _ in range(3)])
    async with running(cluster_app.worker(["background"])):
        await wait_until(lambda: _state_is(cluster_app, "background", ids[2], JobState.COMPLETED))
    assert ran == ids
    assert (await cluster_app.queue("background").get_job(ids[2])).result == 13


async def test_a_flow_across_queues_is_refused_with_a_reason_and_writes_nothing(cluster_app: Conveyor) -> None:
    _flow_handlers(cluster_app, "indexing")
    _flow_handlers(cluster_app, "background")
    flow = FlowJob("background", "sum", children=[FlowJob("indexing", "sum")])
    with pytest.raises(FlowError, match="one queue"):
        await Flows.of(cluster_app).add(flow)
    for name in ("indexing", "background"):
        counts = await cluster_app.queue(name).counts()
        assert counts.pending + counts.waiting_children == 0


async def test_job_search_finds_jobs_by_text_and_state(cluster_app: Conveyor) -> None:
    queue = cluster_app.queue("ai-processing")
    await queue.add_bulk([NewJob("summarise", {"path": f"src/file{n}.py"}) for n in range(20)])
    page = await scan_jobs(queue, JobFilter(text="file7"))
    assert [job.data for job in page.jobs] == [{"path": "src/file7.py"}]
    assert len((await scan_jobs(queue, JobFilter(job_type="summarise"), limit=50)).jobs) == 20


async def test_metrics_count_jobs_of_queues_on_every_shard(cluster_app: Conveyor) -> None:
    instrument(cluster_app)
    queues = ["indexing", "background"]
    for name in queues:

        @cluster_app.handler(name, "ok")
        async def ok(payload: dict[str, Any]) -> None:
            return None

    async with running(cluster_app.worker(queues)):
        for name in queues:
            await cluster_app.add_bulk(name, [NewJob("ok") for _ in range(5)])
        for name in queues:
            await wait_until(lambda n=name: _completed(cluster_app, n, 5))
        await asyncio.sleep(0.5)  # the recorder flushes its counts every 0.2 s
        samples = parse((await asgi_get(metrics_asgi_app(cluster_app)))[2].decode())
    for name in queues:
        assert value(samples, "conveyor_jobs_completed_total", queue=name, job_type="ok") == 5
        assert value(samples, "conveyor_queue_jobs", queue=name, state="completed") == 5
    assert value(samples, "conveyor_redis_up") == 1


async def _completed(app: Conveyor, queue: str, count: int) -> bool:
    return (await app.queue(queue).counts()).completed >= count


async def test_api_tokens_are_stored_and_verified_on_a_cluster(cluster_app: Conveyor) -> None:
    store = TokenStore(cluster_app.client, cluster_app.settings.conveyor_prefix)
    created = await store.create("ci", "operator", known_queues=cluster_app.queue_names)
    assert (await store.verify(created.token)) is not None
    assert await cluster_app.client.exists("bull:{conveyor}:api-tokens") == 1


async def test_cancelling_an_active_job_reaches_its_worker(cluster_app: Conveyor) -> None:
    started = asyncio.Event()

    @cluster_app.handler("background", "long")
    async def long(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        await asyncio.sleep(30)

    async with running(cluster_app.worker(["background"])):
        job_id = await cluster_app.add("background", "long")
        await asyncio.wait_for(started.wait(), 10)
        await cluster_app.queue("background").cancel(job_id)
        await wait_until(lambda: _state_is(cluster_app, "background", job_id, JobState.FAILED), timeout=10)
