"""Bad input gets a clear message and a stable code, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

from conveyor import Conveyor
from tests.api.conftest import Api, code_of

ADD = """mutation($q: String!, $t: String!, $d: JSON, $o: JobOptionsInput) {
  addJob(queueName: $q, type: $t, data: $d, options: $o) { id } }"""


async def nothing_written(app: Conveyor) -> bool:
    """True when no job was written: the queues hold no key but their meta and event stream."""
    keys = [key async for key in app.client.scan_iter("bull:*") if not key.startswith("bull:conveyor:")]
    return not [key for key in keys if not key.endswith((":meta", ":events"))]


async def add(api: Api, queue: str = "background", job_type: str = "ok", data: Any = None, **options: Any) -> Any:
    return await api.gql(ADD, {"q": queue, "t": job_type, "d": data, "o": options or None})


async def test_unknown_queue(api: Api, api_app: Conveyor) -> None:
    result = await add(api, "nope")
    assert code_of(result) == "UNKNOWN_QUEUE"
    assert "Known queues: ai-processing, background, indexing" in result["errors"][0]["message"]
    assert code_of(await api.gql('{ queue(name: "nope") { name } }')) == "UNKNOWN_QUEUE"
    assert code_of(await api.gql('{ jobs(queue: "nope") { edges { cursor } } }')) == "UNKNOWN_QUEUE"
    assert await nothing_written(api_app)


async def test_malformed_json_body(api: Api, api_app: Conveyor) -> None:
    response = await api.post(content=b'{"query": "mutation { addJob(', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert code_of(response.json()) == "MALFORMED_JSON"
    assert await nothing_written(api_app)


async def test_body_that_is_not_an_object(api: Api) -> None:
    response = await api.post(content=b'"query"', headers={"Content-Type": "application/json"})
    assert code_of(response.json()) == "BAD_REQUEST"


async def test_variables_of_the_wrong_type(api: Api, api_app: Conveyor) -> None:
    result = await add(api, attempts="three")
    assert code_of(result) == "BAD_USER_INPUT"
    result = await api.gql(ADD, {"q": "background", "t": "ok", "o": {"deadline": "next tuesday"}})
    assert code_of(result) == "BAD_USER_INPUT"
    assert await nothing_written(api_app)


async def test_payload_that_does_not_match_the_handlers_model(api: Api, api_app: Conveyor) -> None:
    result = await add(api, "indexing", "index-file", {"path": "src/index.ts"})
    assert code_of(result) == "INVALID_PAYLOAD"
    assert "filePath" in result["errors"][0]["message"]
    assert result["errors"][0]["extensions"]["fields"] == ["filePath"]
    assert await nothing_written(api_app)


async def test_oversize_payload(api: Api, api_app: Conveyor) -> None:
    result = await add(api, data={"blob": "x" * (1024 * 1024 + 1)})
    assert code_of(result) == "PAYLOAD_TOO_LARGE"
    assert "CONVEYOR_MAX_PAYLOAD_BYTES" in result["errors"][0]["message"]
    assert await nothing_written(api_app)


async def test_invalid_job_options(api: Api, api_app: Conveyor) -> None:
    assert code_of(await add(api, attempts=0)) == "INVALID_OPTIONS"
    assert code_of(await add(api, jobId="123")) == "INVALID_OPTIONS"
    assert code_of(await add(api, priority="HIGH", priorityLevel=2)) == "INVALID_OPTIONS"
    assert code_of(await add(api, priorityLevel=0)) == "INVALID_OPTIONS"
    assert code_of(await add(api, delay=-1)) == "INVALID_OPTIONS"
    assert await nothing_written(api_app)


async def test_empty_job_type(api: Api, api_app: Conveyor) -> None:
    assert code_of(await add(api, job_type="")) == "INVALID_PAYLOAD"
    assert await nothing_written(api_app)


async def test_a_lone_surrogate_in_the_payload_or_the_type(api: Api, api_app: Conveyor) -> None:
    """JSON's "\\ud800" escape is no character: a clear INVALID_PAYLOAD, not an internal error."""

    async def add_raw(job_type: str, data: Any) -> Any:
        body = json.dumps({"query": ADD, "variables": {"q": "background", "t": job_type, "d": data}})  # ASCII
        response = await api.post(content=body.encode(), headers={"Content-Type": "application/json"})
        return response.json()

    result = await add_raw("ok", {"text": "a\ud800"})
    assert code_of(result) == "INVALID_PAYLOAD"
    assert "lone surrogate" in result["errors"][0]["message"]
    assert code_of(await add_raw("ok\udc80", None)) == "INVALID_PAYLOAD"
    assert await nothing_written(api_app)


async def test_unknown_job_is_not_found(api: Api) -> None:
    result = await api.gql('mutation { retryJob(queue: "background", id: "404") { id } }')
    assert code_of(result) in ("JOB_NOT_FOUND", "JOB_STATE_CONFLICT")
    assert code_of(await api.gql('mutation { removeJob(queue: "background", id: "404") }')) == "JOB_NOT_FOUND"
    cancel = 'mutation { cancelJob(queue: "background", id: "404") { removed } }'
    assert code_of(await api.gql(cancel)) == "JOB_NOT_FOUND"


async def test_search_text_is_limited(api: Api) -> None:
    query = 'query($s: String) { jobs(queue: "background", search: $s) { edges { cursor } } }'
    result = await api.gql(query, {"s": "x" * 201})
    assert code_of(result) == "LIMIT_EXCEEDED"
