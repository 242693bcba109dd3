"""Flows: a parent runs after all its children (across queues) and reads their results; chains pass each
result on; a child's failure policy decides what happens to its parent."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from conveyor import Conveyor, JobContext, JobOptions, JobState
from conveyor.queue.errors import InvalidPayloadError
from conveyor.queue.flows import FailurePolicy, FlowJob, Flows
from tests.advanced.conftest import advanced, running, state_is, wait_until

QUEUES = ["background", "indexing", "ai-processing"]


def add_flow_handlers(app: Conveyor) -> tuple[Flows, list[str]]:
    """`sum` adds its children's results; `inc` adds one to the previous step's result (or its payload's
    `start`); `seen` records every job that ran."""
    flows = Flows.of(app)
    ran: list[str] = []
    for queue in QUEUES:

        @app.handler(queue, "sum")
        async def total(payload: dict[str, Any], ctx: JobContext) -> int:
            ran.append(ctx.job.id)
            results = await flows.children_results(ctx.job.queue, ctx.job.id)
            return sum(int(value) for value in results.values())

        @app.handler(queue, "inc")
        async def inc(payload: dict[str, Any], ctx: JobContext) -> int:
            ran.append(ctx.job.id)
            previous = await flows.previous_result(ctx.job.queue, ctx.job.id)
            return int(payload.get("start", 0) if previous is None else previous) + 1

    return flows, ran


async def test_parent_runs_after_all_children_across_queues_and_reads_their_results(app: Conveyor) -> None:
    flows, ran = add_flow_handlers(app)
    flow = FlowJob(
        "background",
        "sum",
        children=[
            FlowJob("indexing", "ok", {"result": 1}),
            FlowJob("ai-processing", "ok", {"result": 2}),
            FlowJob("background", "ok", {"result": 39}),
        ],
    )
    tree = await flows.add(flow)
    queue = app.queue("background")
    assert await queue.state_of(tree.job_id) is JobState.WAITING_CHILDREN
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(queue, tree.job_id, JobState.COMPLETED))
    assert (await queue.get_job(tree.job_id)).result == 42
    children = await flows.children("background", tree.job_id)
    assert sorted((child.queue, child.status, child.result) for child in children) == [
        ("ai-processing", "completed", 2),
        ("background", "completed", 39),
        ("indexing", "completed", 1),
    ]
    assert ran == [tree.job_id]


async def test_children_and_parent_are_visible_before_anything_ran(app: Conveyor) -> None:
    flows, _ = add_flow_handlers(app)
    tree = await flows.add(
        FlowJob("background", "sum", children=[FlowJob("indexing", "ok"), FlowJob("indexing", "ok")])
    )
    children = await flows.children("background", tree.job_id)
    assert {(child.queue, child.job_id, child.status) for child in children} == {
        ("indexing", node.job_id, "pending") for node in tree.children
    }
    parent = await flows.parent("indexing", tree.children[0].job_id)
    assert parent is not None
    assert (parent.queue, parent.job_id) == ("background", tree.job_id)
    assert await flows.parent("background", tree.job_id) is None


async def test_chain_runs_steps_in_order_each_receiving_the_previous_result(app: Conveyor) -> None:
    flows, ran = add_flow_handlers(app)
    steps = [
        FlowJob("indexing", "inc", {"start": 10}),
        FlowJob("background", "inc"),
        FlowJob("ai-processing", "inc"),
    ]
    ids = await flows.add_chain(steps)
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(app.queue("ai-processing"), ids[2], JobState.COMPLETED))
    assert ran == ids
    assert (await app.queue("ai-processing").get_job(ids[2])).result == 13


async def test_a_failing_step_fails_the_rest_of_the_chain_by_default(app: Conveyor) -> None:
    flows, ran = add_flow_handlers(app)
    ids = await flows.add_chain(
        [FlowJob("background", "inc"), FlowJob("indexing", "fatal"), FlowJob("background", "inc")]
    )
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(app.queue("background"), ids[2], JobState.FAILED))
    last = await app.queue("background").get_job(ids[2])
    assert f"child bull:indexing:{ids[1]} failed" in (last.failed_reason or "")
    assert ran == [ids[0]]  # the last step never ran its handler


async def test_continue_runs_the_next_step_and_shows_the_failure(app: Conveyor) -> None:
    flows, _ = add_flow_handlers(app)
    ids = await flows.add_chain(
        [FlowJob("indexing", "fatal", on_failure=FailurePolicy.CONTINUE), FlowJob("background", "inc", {"start": 5})]
    )
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(app.queue("background"), ids[1], JobState.COMPLETED))
    assert (await app.queue("background").get_job(ids[1])).result == 6  # no previous result: from `start`
    (child,) = await flows.children("background", ids[1])
    assert (child.job_id, child.status) == (ids[0], "failed")
    assert "NonRetryableError" in (child.failed_reason or "")


async def test_ignore_lets_the_parent_run_after_its_other_children(app: Conveyor) -> None:
    flows, _ = add_flow_handlers(app)
    flow = FlowJob(
        "background",
        "sum",
        children=[
            FlowJob("indexing", "fatal", on_failure=FailurePolicy.IGNORE),
            FlowJob("indexing", "ok", {"result": 7}),
        ],
    )
    tree = await flows.add(flow)
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(app.queue("background"), tree.job_id, JobState.COMPLETED))
    assert (await app.queue("background").get_job(tree.job_id)).result == 7
    statuses = {child.job_id: child.status for child in await flows.children("background", tree.job_id)}
    assert statuses == {tree.children[0].job_id: "failed", tree.children[1].job_id: "completed"}


async def test_wait_keeps_the_parent_waiting_until_the_failed_child_is_retried(app: Conveyor) -> None:
    flows, _ = add_flow_handlers(app)
    broken = [True]

    @app.handler("indexing", "toggle")
    async def toggle(payload: dict[str, Any]) -> int:
        if broken[0]:
            raise RuntimeError("not yet")
        return 3

    child_job = FlowJob("indexing", "toggle", options=JobOptions(attempts=1), on_failure=FailurePolicy.WAIT)
    tree = await flows.add(FlowJob("background", "sum", children=[child_job]))
    child = tree.children[0].job_id
    background, indexing = app.queue("background"), app.queue("indexing")
    worker, _, _ = advanced(app.worker(QUEUES))
    async with running(worker):
        await wait_until(lambda: state_is(indexing, child, JobState.FAILED))
        assert await background.state_of(tree.job_id) is JobState.WAITING_CHILDREN
        broken[0] = False
        await indexing.retry(child)
        await wait_until(lambda: state_is(background, tree.job_id, JobState.COMPLETED))
    assert (await background.get_job(tree.job_id)).result == 3


async def test_a_refused_payload_writes_nothing_of_the_flow(app: Conveyor) -> None:
    class Path(BaseModel):
        path: str

    @app.handler("indexing", "typed", payload=Path)
    async def typed(payload: Path) -> str:
        return payload.path

    flows, _ = add_flow_handlers(app)
    flow = FlowJob("background", "sum", children=[FlowJob("indexing", "ok"), FlowJob("indexing", "typed", {"x": 1})])
    with pytest.raises(InvalidPayloadError):
        await flows.add(flow)
    for name in QUEUES:
        counts = await app.queue(name).counts()
        assert counts.pending + counts.waiting_children == 0
