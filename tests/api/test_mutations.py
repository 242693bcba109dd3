"""Every mutation, and the design note's example mutations as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor import Conveyor, JobState
from tests.api.conftest import Api, code_of, running_worker
from tests.support import wait_until

JOB = "id queue type data state priority attempts maxAttempts createdAt delayedUntil deadline"


async def add(api: Api, queue: str = "background", job_type: str = "ok", data: Any = None, **options: Any) -> Any:
    query = f"""mutation($q: String!, $t: String!, $d: JSON, $o: JobOptionsInput) {{
        addJob(queueName: $q, type: $t, data: $d, options: $o) {{ {JOB} }} }}"""
    return (await api.data(query, {"q": queue, "t": job_type, "d": data, "o": options or None}))["addJob"]


async def failed_jobs(api: Api, app: Conveyor, count: int, queue: str = "background") -> list[str]:
    ids = [(await add(api, queue, "fail", {"reason": f"bad {n}"}))["id"] for n in range(count)]
    target = app.queue(queue)
    async with running_worker(app, queue):
        for job_id in ids:
            await wait_until(lambda job_id=job_id: _in(target, job_id, JobState.FAILED))
    return ids


async def _in(queue: Any, job_id: str, state: JobState) -> bool:
    return bool(await queue.state_of(job_id) is state)


async def test_design_use_case_1_distributed_file_indexing(api: Api, api_app: Conveyor) -> None:
    result = await api.data(
        """mutation {
          addJob(
            queueName: "indexing"
            type: "index-file"
            data: { filePath: "src/index.ts" }
          ) {
            id
            state
          }
        }"""
    )
    job = await api_app.queue("indexing").get_job(result["addJob"]["id"])
    assert job.data == {"filePath": "src/index.ts"}
    assert result["addJob"]["state"] == "WAITING"  # in BullMQ's prioritized set (normal priority), still waiting


async def test_design_use_case_2_batch_ai_processing_with_priority_2(api: Api, api_app: Conveyor) -> None:
    files = [f"src/file{n}.ts" for n in range(100)]
    jobs = [{"type": "generate-summary", "data": {"filePath": f}, "options": {"priorityLevel": 2}} for f in files]
    query = 'mutation($jobs: [NewJobInput!]!) { addJobs(queueName: "ai-processing", jobs: $jobs) { id priority } }'
    added = (await api.data(query, {"jobs": jobs}))["addJobs"]
    assert len(added) == 100
    assert {job["priority"] for job in added} == {2}
    assert (await api_app.queue("ai-processing").counts()).prioritized == 100


async def test_design_use_case_3_scheduled_tasks_as_written_delays_the_cleanup_by_24_hours(api: Api) -> None:
    """The note puts `delay` inside data; `cleanup-temp-files` takes it as the job's delay (DELAY_FIELD)."""
    before = datetime.now(UTC)
    data = await api.data(
        """mutation {
          addJob(
            queueName: "background"
            type: "cleanup-temp-files"
            data: { delay: 86400000 } # Run in 24 hours
          ) {
            id
            state
            delayedUntil
          }
        }"""
    )
    job = data["addJob"]
    assert job["state"] == "DELAYED"
    due = datetime.fromisoformat(job["delayedUntil"])
    assert abs((due - before).total_seconds() - 86_400) < 60, due


async def test_delay_option_schedules_the_job(api: Api) -> None:
    before = datetime.now(UTC)
    job = await add(api, "background", "cleanup-temp-files", {}, delay=86_400_000)
    assert job["state"] == "DELAYED"
    due = datetime.fromisoformat(job["delayedUntil"])
    assert before + timedelta(hours=23, minutes=59) < due < before + timedelta(hours=24, minutes=1)


async def test_add_job_applies_every_option(api: Api, api_app: Conveyor) -> None:
    deadline = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    job = await add(
        api, "background", "ok", {"n": 1}, priority="CRITICAL", attempts=5,
        backoff={"type": "FIXED", "delay": 250}, timeout=1500, deadline=deadline.isoformat(), jobId="nightly-1",
    )  # fmt: skip
    assert (job["id"], job["priority"], job["maxAttempts"]) == ("nightly-1", 1, 5)
    assert datetime.fromisoformat(job["deadline"]) == deadline
    stored = await api_app.queue("background").get_job("nightly-1")
    assert stored.options["backoff"]["type"] == "fixed"
    assert stored.options["timeout"] == 1500
    again = await add(api, "background", "ok", {"n": 2}, jobId="nightly-1")
    assert again["id"] == "nightly-1"
    assert (await api_app.queue("background").get_job("nightly-1")).data == {"n": 1}


async def test_add_jobs_validates_all_before_writing_any(api: Api, api_app: Conveyor) -> None:
    jobs = [{"type": "index-file", "data": {"filePath": "a"}}, {"type": "index-file", "data": {"path": "b"}}]
    query = 'mutation($jobs: [NewJobInput!]!) { addJobs(queueName: "indexing", jobs: $jobs) { id } }'
    assert code_of(await api.gql(query, {"jobs": jobs})) == "INVALID_PAYLOAD"
    assert (await api_app.queue("indexing").counts()).pending == 0


async def test_pause_and_resume_queue(api: Api, api_app: Conveyor) -> None:
    assert (await api.data('mutation { pauseQueue(name: "background") }'))["pauseQueue"] is True
    assert await api_app.queue("background").is_paused()
    assert (await api.data('{ queue(name: "background") { isPaused } }'))["queue"]["isPaused"] is True
    await api.data('mutation { resumeQueue(name: "background") }')
    assert not await api_app.queue("background").is_paused()


async def test_clear_queue_refuses_active_jobs_unless_forced(api: Api, api_app: Conveyor) -> None:
    job = await add(api, "background", "sleep", {"seconds": 3})
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        await wait_until(lambda: _in(queue, job["id"], JobState.ACTIVE))
        assert code_of(await api.gql('mutation { clearQueue(name: "background") }')) == "QUEUE_BUSY"
        assert await queue.state_of(job["id"]) is JobState.ACTIVE
        await api.data('mutation { clearQueue(name: "background", force: true) }')
    assert (await queue.counts()).active == 0


async def test_retry_job_moves_a_failed_job_back(api: Api, api_app: Conveyor) -> None:
    [job_id] = await failed_jobs(api, api_app, 1)
    query = 'query($id: ID!) { job(queue: "background", id: $id) { state failedReason } }'
    detail = await api.data(query, {"id": job_id})
    assert detail["job"]["state"] == "FAILED"
    assert "bad 0" in detail["job"]["failedReason"]
    retry = 'mutation($id: ID!) { retryJob(queue: "background", id: $id) { id state } }'
    retried = await api.data(retry, {"id": job_id})
    assert retried["retryJob"]["state"] == "WAITING"
    again = await api.gql(retry, {"id": job_id})
    assert code_of(again) == "JOB_STATE_CONFLICT"


async def test_retry_history_numbers_the_runs_after_a_retry_1_then_2(api: Api, api_app: Conveyor) -> None:
    [job_id] = await failed_jobs(api, api_app, 1)
    await api.data('mutation($id: ID!) { retryJob(queue: "background", id: $id) { id } }', {"id": job_id})
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        await wait_until(lambda: _in(queue, job_id, JobState.FAILED))
    query = 'query($id: ID!) { job(queue: "background", id: $id) { retryHistory { attempt error } } }'
    history = (await api.data(query, {"id": job_id}))["job"]["retryHistory"]
    assert [(run["attempt"], "bad 0" in run["error"]) for run in history] == [(1, True), (2, True)]


async def test_retry_jobs_by_ids_reports_each(api: Api, api_app: Conveyor) -> None:
    ids = await failed_jobs(api, api_app, 2)
    query = 'mutation($ids: [ID!]!) { retryJobs(queue: "background", ids: $ids) { succeeded failed { id code } } }'
    result = (await api.data(query, {"ids": [*ids, "nope"]}))["retryJobs"]
    assert sorted(result["succeeded"]) == sorted(ids)
    assert result["failed"] == [{"id": "nope", "code": "JOB_NOT_FOUND"}]


async def test_retry_jobs_where_dry_run_counts_and_writes_nothing(api: Api, api_app: Conveyor) -> None:
    await failed_jobs(api, api_app, 3)
    query = """mutation($dry: Boolean!) {
        retryJobsWhere(queue: "background", filter: {states: [FAILED], search: "bad 1"}, dryRun: $dry) {
        matched retried dryRun jobIds } }"""
    dry = (await api.data(query, {"dry": True}))["retryJobsWhere"]
    assert (dry["matched"], dry["retried"], dry["dryRun"]) == (1, 0, True)
    assert (await api_app.queue("background").counts()).failed == 3
    done = (await api.data(query, {"dry": False}))["retryJobsWhere"]
    assert (done["matched"], done["retried"]) == (1, 1)
    assert (await api_app.queue("background").counts()).failed == 2


async def test_retry_jobs_where_refuses_non_retryable_states(api: Api) -> None:
    query = 'mutation { retryJobsWhere(queue: "background", filter: {states: [ACTIVE]}) { matched } }'
    assert code_of(await api.gql(query)) == "JOB_STATE_CONFLICT"


async def test_promote_job_runs_a_delayed_job_now(api: Api) -> None:
    job = await add(api, "background", "ok", delay=60_000)
    promote = 'mutation($id: ID!) { promoteJob(queue: "background", id: $id) { state } }'
    promoted = await api.data(promote, {"id": job["id"]})
    assert promoted["promoteJob"]["state"] == "WAITING"
    again = await api.gql(promote, {"id": job["id"]})
    assert code_of(again) == "JOB_STATE_CONFLICT"


async def test_promote_jobs_by_ids(api: Api) -> None:
    ids = [(await add(api, delay=60_000))["id"] for _ in range(2)]
    query = 'mutation($ids: [ID!]!) { promoteJobs(queue: "background", ids: $ids) { succeeded failed { id } } }'
    result = (await api.data(query, {"ids": ids}))["promoteJobs"]
    assert (sorted(result["succeeded"]), result["failed"]) == (sorted(ids), [])


async def test_remove_job_and_remove_jobs(api: Api, api_app: Conveyor) -> None:
    ids = [(await add(api))["id"] for _ in range(3)]
    remove = 'mutation($id: ID!) { removeJob(queue: "background", id: $id) }'
    assert (await api.data(remove, {"id": ids[0]}))["removeJob"]
    remove_all = 'mutation($ids: [ID!]!) { removeJobs(queue: "background", ids: $ids) { succeeded failed { id code } }}'
    result = (await api.data(remove_all, {"ids": ids}))["removeJobs"]
    assert sorted(result["succeeded"]) == sorted(ids[1:])
    assert result["failed"] == [{"id": ids[0], "code": "JOB_NOT_FOUND"}]
    assert (await api_app.queue("background").counts()).pending == 0


async def test_cancel_pending_job_removes_it(api: Api, api_app: Conveyor) -> None:
    job = await add(api)
    query = 'mutation($id: ID!) { cancelJob(queue: "background", id: $id) { jobId previousState removed } }'
    result = (await api.data(query, {"id": job["id"]}))["cancelJob"]
    assert result == {"jobId": job["id"], "previousState": "WAITING", "removed": True}
    assert await api_app.queue("background").state_of(job["id"]) is JobState.UNKNOWN


async def test_cancel_active_job_stops_it(api: Api, api_app: Conveyor) -> None:
    job = await add(api, "background", "sleep", {"seconds": 20})
    queue = api_app.queue("background")
    async with running_worker(api_app, "background"):
        await wait_until(lambda: _in(queue, job["id"], JobState.ACTIVE))
        query = 'mutation($ids: [ID!]!) { cancelJobs(queue: "background", ids: $ids) { succeeded } }'
        assert (await api.data(query, {"ids": [job["id"]]}))["cancelJobs"]["succeeded"] == [job["id"]]
        await wait_until(lambda: _in(queue, job["id"], JobState.FAILED))


async def test_add_job_of_a_type_no_live_worker_handles_is_added_with_a_warning_in_extensions(
    api: Api, api_app: Conveyor
) -> None:
    query = 'mutation { addJob(queueName: "background", type: "no-such-type", data: {}) { id } }'
    result = await api.gql(query)
    assert "errors" not in result, result
    assert await api_app.queue("background").get_job(result["data"]["addJob"]["id"])  # added all the same
    (warning,) = result["extensions"]["warnings"]
    assert "No live worker handles job type 'no-such-type' on queue 'background'" in warning


async def test_add_jobs_warns_only_about_the_types_no_live_worker_handles(api: Api, api_app: Conveyor) -> None:
    jobs = [{"type": "ok"}, {"type": "nope"}, {"type": "ok"}]
    query = 'mutation($jobs: [NewJobInput!]!) { addJobs(queueName: "background", jobs: $jobs) { id } }'
    async with running_worker(api_app, "background"):
        served = await api.gql('mutation { addJob(queueName: "background", type: "ok") { id } }')
        mixed = await api.gql(query, {"jobs": jobs})
    assert "warnings" not in served.get("extensions", {}), served
    assert len(mixed["data"]["addJobs"]) == 3
    (warning,) = mixed["extensions"]["warnings"]
    assert "job type 'nope' on queue 'background'" in warning
