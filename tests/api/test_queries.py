"""Queries: queues, one job, recent jobs, workers, metrics."""

from __future__ import annotations

import asyncio

from conveyor import Conveyor, JobState
from tests.api.conftest import Api, code_of, running_worker
from tests.api.test_mutations import _in, add
from tests.support import wait_until


async def test_queues_and_queue_report_counts(api: Api) -> None:
    await add(api)
    await add(api, delay=60_000)
    await api.data('mutation { pauseQueue(name: "background") }')
    data = await api.data(
        "{ queues { name prioritized paused delayed waiting active completed failed isPaused concurrency }}"
    )
    background = next(q for q in data["queues"] if q["name"] == "background")
    assert background == {
        "name": "background", "prioritized": 1, "paused": 1, "delayed": 1, "waiting": 1, "active": 0,
        "completed": 0, "failed": 0, "isPaused": True, "concurrency": 2,
    }  # fmt: skip
    one = await api.data('{ queue(name: "background") { name delayed } }')
    assert one["queue"] == {"name": "background", "delayed": 1}


async def test_job_exposes_result_progress_logs_and_timestamps(api: Api, api_app: Conveyor) -> None:
    job = await add(api, "background", "steps", {"steps": 2, "pause": 0.01})
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        await wait_until(lambda: _in(queue, job["id"], JobState.COMPLETED))
    query = """query($id: ID!) { job(queue: "background", id: $id) { id state progress result attempts logs
        createdAt processedAt completedAt finishedAt failedAt worker } }"""
    detail = (await api.data(query, {"id": job["id"]}))["job"]
    assert (detail["state"], detail["progress"], detail["result"]) == ("COMPLETED", 100, {"steps": 2})
    assert detail["logs"] == ["step 1", "step 2"]
    assert detail["attempts"] == 1
    assert detail["createdAt"] <= detail["processedAt"] <= detail["completedAt"] == detail["finishedAt"]
    assert detail["failedAt"] is None


async def test_failed_job_has_retry_history(api: Api, api_app: Conveyor) -> None:
    backoff = {"type": "FIXED", "delay": 10}
    job = await add(api, "background", "fail", {"reason": "disk full"}, attempts=2, backoff=backoff)
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        await wait_until(lambda: _in(queue, job["id"], JobState.FAILED))
    query = 'query($id: ID!) { job(queue: "background", id: $id) { failedReason retryHistory { attempt error } } }'
    detail = (await api.data(query, {"id": job["id"]}))["job"]
    assert "disk full" in detail["failedReason"]
    assert [r["attempt"] for r in detail["retryHistory"]] == [1, 2]
    assert all("disk full" in r["error"] for r in detail["retryHistory"])


async def test_job_without_queue_is_found_when_its_id_is_unique(api: Api) -> None:
    await add(api, "background", "ok", jobId="only-here")
    assert (await api.data('{ job(id: "only-here") { queue } }'))["job"] == {"queue": "background"}
    assert (await api.data('{ job(id: "nowhere") { queue } }'))["job"] is None


async def test_job_without_queue_is_ambiguous_when_several_queues_hold_the_id(api: Api) -> None:
    await add(api, "background", jobId="twice")
    await add(api, "indexing", "x", jobId="twice")
    assert code_of(await api.gql('{ job(id: "twice") { id } }')) == "AMBIGUOUS_JOB"


async def test_recent_jobs_are_newest_first(api: Api) -> None:
    ids = [(await add(api))["id"] for _ in range(3)]
    delayed = (await add(api, delay=60_000))["id"]
    await asyncio.sleep(0.01)
    newest = (await add(api))["id"]
    data = await api.data('{ recentJobs(queueName: "background", limit: 3) { id } }')
    assert [j["id"] for j in data["recentJobs"]] == [newest, delayed, ids[2]]


async def test_workers_lists_live_workers(api: Api, api_app: Conveyor) -> None:
    async with running_worker(api_app, "background", "indexing"):
        await wait_until(lambda: api_app.workers())
        data = await api.data("{ workers { id pid host processed queues { name concurrency active } lastBeat } }")
    [worker] = data["workers"]
    assert {q["name"] for q in worker["queues"]} == {"background", "indexing"}


async def test_queue_metrics_count_finished_jobs_and_percentiles(api: Api, api_app: Conveyor) -> None:
    ok = [(await add(api, "background", "sleep", {"seconds": 0.05}))["id"] for _ in range(3)]
    bad = (await add(api, "background", "fail"))["id"]
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        for job_id in ok:
            await wait_until(lambda job_id=job_id: _in(queue, job_id, JobState.COMPLETED))
        await wait_until(lambda: _in(queue, bad, JobState.FAILED))
    query = """{ queueMetrics(queue: "background", range: LAST_15_MINUTES) { completed failed jobsPerSecond
        perMinute { completed failed } runTime { count p50 max } waitTime { count } truncated } }"""
    metrics = (await api.data(query))["queueMetrics"]
    assert (metrics["completed"], metrics["failed"]) == (3, 1)
    assert sum(m["completed"] for m in metrics["perMinute"]) == 3
    assert metrics["runTime"]["count"] == 4
    assert metrics["runTime"]["max"] >= 50
    assert metrics["jobsPerSecond"] == 4 / (15 * 60)
    assert metrics["truncated"] is False
