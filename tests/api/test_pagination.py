"""`jobs`: filters and Relay pagination that stays stable while jobs move."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from conveyor import Conveyor, JobOptions, Queue
from conveyor.queue.options import bullmq_options
from tests.api.conftest import Api, code_of, running_worker
from tests.api.test_mutations import add, failed_jobs

PAGE = """query($q: String!, $states: [JobState!], $type: String, $search: String, $first: Int!, $after: String) {
  jobs(queue: $q, states: $states, type: $type, search: $search, first: $first, after: $after) {
    edges { cursor node { id state type } } pageInfo { hasNextPage endCursor } } }"""


async def page(api: Api, first: int, after: str | None = None, **filters: Any) -> dict[str, Any]:
    variables = {"q": filters.pop("queue", "background"), "first": first, "after": after, **filters}
    result: dict[str, Any] = (await api.data(PAGE, variables))["jobs"]
    return result


async def all_pages(api: Api, first: int, between: Any = None, **filters: Any) -> list[str]:
    ids: list[str] = []
    after = None
    for n in range(1000):
        current = await page(api, first, after, **filters)
        ids += [edge["node"]["id"] for edge in current["edges"]]
        if not current["pageInfo"]["hasNextPage"]:
            return ids
        after = current["pageInfo"]["endCursor"]
        if between is not None:
            await between(n)
    raise AssertionError("pagination did not end")


async def test_pages_cover_every_job_once_in_state_order(api: Api) -> None:
    delayed = [(await add(api, delay=60_000 + n))["id"] for n in range(3)]
    prioritized = [(await add(api, priority=p))["id"] for p in ("LOW", "CRITICAL", "NORMAL")]
    ids = await all_pages(api, 2)
    assert ids == [prioritized[1], prioritized[2], prioritized[0], *delayed]


async def test_filters_by_state_type_and_text(api: Api) -> None:
    await add(api, "background", "ok", {"path": "src/Main.py"})
    wanted = (await add(api, "background", "index", {"path": "src/main.py"}))["id"]
    await add(api, "background", "index", {"path": "docs/readme.md"})
    await add(api, "background", "index", {"path": "src/main.py"}, delay=60_000)
    assert await all_pages(api, 10, type="index", search="MAIN", states=["PRIORITIZED"]) == [wanted]
    assert len(await all_pages(api, 10, search="main")) == 3


async def test_finished_jobs_come_newest_first(api: Api, api_app: Conveyor) -> None:
    ids = await failed_jobs(api, api_app, 4)
    assert await all_pages(api, 3, states=["FAILED"]) == list(reversed(ids))


async def test_sorted_set_pages_stay_stable_while_jobs_come_and_go(api: Api, api_app: Conveyor) -> None:
    ids = [(await add(api))["id"] for _ in range(30)]
    queue = api_app.queue("background")
    seen: list[str] = []
    untouched = set(ids)

    removed: set[str] = set()

    async def churn(n: int) -> None:
        # remove two jobs already returned and one not yet returned, add a new one
        for job_id in [i for i in seen if i not in removed][:2]:
            await queue.remove(job_id)
            removed.add(job_id)
        later = next((i for i in ids if i not in seen and i in untouched and i != ids[-1]), None)
        if later is not None:
            await queue.remove(later)
            untouched.discard(later)
        await add(api)

    after = None
    while True:
        current = await page(api, 5, after, states=["PRIORITIZED"])
        batch = [edge["node"]["id"] for edge in current["edges"]]
        seen += batch
        if not current["pageInfo"]["hasNextPage"]:
            break
        after = current["pageInfo"]["endCursor"]
        await churn(len(seen))
    assert len(seen) == len(set(seen))
    assert untouched - set(seen) == set()


async def add_to_wait_list(queue: Queue, count: int) -> list[str]:
    """Jobs without priority, as a Node BullMQ producer adds them: they go to the `wait` list."""
    ids = []
    for _ in range(count):
        now = int(time.time() * 1000)
        opts = {**bullmq_options(JobOptions(), queue.defaults, now), "priority": 0}
        ids.append(str(await queue.scripts.add_job(job_id="", name="ok", data_json="{}", opts=opts, timestamp=now)))
    return ids


async def test_list_pages_stay_stable_while_jobs_come_and_go(api: Api, api_app: Conveyor) -> None:
    queue = api_app.queue("background")
    ids = await add_to_wait_list(queue, 24)
    seen: list[str] = []
    gone: set[str] = set()

    async def churn(n: int) -> None:
        # a worker takes the oldest waiting job, a returned one is removed, a new job arrives
        fetched = await queue.scripts.move_to_active(token="t", lock_ms=60_000, worker="test", timestamp=0)
        assert fetched.job_id is not None
        gone.add(fetched.job_id)
        if seen[-1] not in gone:
            await queue.remove(seen[-1])
            gone.add(seen[-1])
        await add_to_wait_list(queue, 1)

    after = None
    while True:
        current = await page(api, 4, after, states=["WAITING"])
        seen += [edge["node"]["id"] for edge in current["edges"]]
        assert {edge["node"]["state"] for edge in current["edges"]} <= {"WAITING"}
        if not current["pageInfo"]["hasNextPage"]:
            break
        after = current["pageInfo"]["endCursor"]
        await churn(len(seen))
    assert len(seen) == len(set(seen))
    assert set(ids) - gone <= set(seen)


async def test_waiting_jobs_of_a_paused_queue_are_waiting_and_paused(api: Api, api_app: Conveyor) -> None:
    ids = await add_to_wait_list(api_app.queue("background"), 3)
    await api.data('mutation { pauseQueue(name: "background") }')
    assert await all_pages(api, 2, states=["PAUSED"]) == ids
    assert await all_pages(api, 2, states=["WAITING"]) == ids


async def test_pagination_while_a_worker_moves_jobs(api: Api, api_app: Conveyor) -> None:
    ids = [(await add(api, "background", "sleep", {"seconds": 0.02}))["id"] for _ in range(40)]
    pages: list[list[dict[str, Any]]] = []

    async def pause(_: int) -> None:
        await asyncio.sleep(0.03)

    async with running_worker(api_app, "background"):
        after = None
        while True:
            current = await page(api, 5, after, states=["PRIORITIZED", "ACTIVE", "COMPLETED"])
            pages.append([edge["node"] for edge in current["edges"]])
            if not current["pageInfo"]["hasNextPage"]:
                break
            after = current["pageInfo"]["endCursor"]
            await pause(0)
    nodes = [node for batch in pages for node in batch]
    by_state: dict[str, list[str]] = {}
    for node in nodes:
        by_state.setdefault(node["state"], []).append(node["id"])
    for state, state_ids in by_state.items():
        assert len(state_ids) == len(set(state_ids)), f"{state} repeated a job"
    assert {node["id"] for node in nodes} <= set(ids)
    assert len(nodes) >= 20  # a job moving ahead of the reader may be missed, but most are seen


async def test_cursor_stays_valid_after_its_job_is_removed(api: Api, api_app: Conveyor) -> None:
    ids = [(await add(api))["id"] for _ in range(4)]
    first = await page(api, 2, states=["PRIORITIZED"])
    await api_app.queue("background").remove(first["edges"][-1]["node"]["id"])
    second = await page(api, 2, first["pageInfo"]["endCursor"], states=["PRIORITIZED"])
    assert [edge["node"]["id"] for edge in second["edges"]] == ids[2:]


async def test_bad_cursors_are_refused(api: Api) -> None:
    for cursor in ("not-a-cursor", "WzEsImJhY2tncm91bmQiLCJub3BlIiwiMSIsMSxudWxsXQ", "e30", "x" * 3000):
        result = await api.gql(PAGE, {"q": "background", "first": 1, "after": cursor})
        assert code_of(result) == "BAD_CURSOR", cursor


async def test_cursor_of_another_queue_is_refused(api: Api) -> None:
    await add(api, "indexing", "x")
    await add(api, "indexing", "x")
    cursor = (await page(api, 1, queue="indexing"))["pageInfo"]["endCursor"]
    result = await api.gql(PAGE, {"q": "background", "first": 1, "after": cursor})
    assert code_of(result) == "BAD_CURSOR"
    assert "indexing" in result["errors"][0]["message"]


async def test_page_size_is_limited(api: Api) -> None:
    assert code_of(await api.gql(PAGE, {"q": "background", "first": 101})) == "LIMIT_EXCEEDED"
    assert code_of(await api.gql(PAGE, {"q": "background", "first": 0})) == "LIMIT_EXCEEDED"
    result = await api.gql('{ recentJobs(queueName: "background", limit: 1000) { id } }')
    assert code_of(result) == "LIMIT_EXCEEDED"


async def test_a_paused_queues_default_priority_jobs_read_as_waiting_everywhere(api: Api, api_app: Conveyor) -> None:
    await api.data('mutation { pauseQueue(name: "background") }')
    ids = [(await add(api))["id"] for _ in range(3)]  # default options: BullMQ's prioritized set
    counts = await api_app.queue("background").counts()
    data = await api.data(
        '{ queue(name: "background") { waiting prioritized paused isPaused }'
        ' recentJobs(queueName: "background") { id state } }'
    )
    assert data["queue"] == {"waiting": 3, "prioritized": 3, "paused": 3, "isPaused": True}
    assert (counts.waiting, counts.prioritized, counts.paused_jobs) == (3, 3, 3)
    assert await all_pages(api, 2, states=["WAITING"]) == ids
    assert {job["state"] for job in data["recentJobs"]} == {"WAITING"}
    listed = await page(api, 10, states=["WAITING"])
    assert {edge["node"]["state"] for edge in listed["edges"]} == {"WAITING"}
