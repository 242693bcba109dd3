"""Limits on documents and requests, introspection by mode, and masking of unexpected errors."""

from __future__ import annotations

from conveyor import Conveyor
from tests.api.conftest import Api, StartApi, code_of

ADD = 'mutation($jobs: [NewJobInput!]!) { addJobs(queueName: "background", jobs: $jobs) { id } }'


async def test_deep_queries_are_refused(start_api: StartApi) -> None:
    api = await start_api(max_depth=3)
    assert "errors" not in await api.gql('{ queue(name: "background") { name } }')
    deep = '{ jobs(queue: "background") { edges { node { retryHistory { attempt } } } } }'
    assert code_of(await api.gql(deep)) == "QUERY_TOO_DEEP"


async def test_depth_counts_fields_inside_fragments(start_api: StartApi) -> None:
    api = await start_api(max_depth=3)
    deep = """{ jobs(queue: "background") { ...E } }
        fragment E on JobConnection { edges { node { retryHistory { attempt } } } }"""
    assert code_of(await api.gql(deep)) == "QUERY_TOO_DEEP"


async def test_aliases_are_limited(start_api: StartApi) -> None:
    api = await start_api(max_aliases=3)
    assert "errors" not in await api.gql("{ a: queues { name } b: queues { name } }")
    many = "{ " + " ".join(f"q{n}: queues {{ name }}" for n in range(4)) + " }"
    assert code_of(await api.gql(many)) == "TOO_MANY_ALIASES"


async def test_aliases_in_fragments_count_once_per_use(start_api: StartApi) -> None:
    api = await start_api(max_aliases=3)
    document = """{ a: queues { ...Q } b: queues { ...Q } }
        fragment Q on Queue { x: name y: name }"""  # 2 + 2 * 2 = 6 aliases
    assert code_of(await api.gql(document)) == "TOO_MANY_ALIASES"


async def test_token_count_is_limited(start_api: StartApi) -> None:
    api = await start_api(max_tokens=50)
    long = "{ " + " ".join("queues { name }" for _ in range(20)) + " }"
    assert code_of(await api.gql(long)) == "TOO_MANY_TOKENS"


async def test_batch_size_is_limited(start_api: StartApi, api_app: Conveyor) -> None:
    api = await start_api(max_batch_size=3)
    assert code_of(await api.gql(ADD, {"jobs": [{"type": "ok"}] * 4})) == "LIMIT_EXCEEDED"
    assert code_of(await api.gql(ADD, {"jobs": []})) == "LIMIT_EXCEEDED"
    ids = 'mutation { removeJobs(queue: "background", ids: ["1", "2", "3", "4"]) { succeeded } }'
    assert code_of(await api.gql(ids)) == "LIMIT_EXCEEDED"
    assert (await api_app.queue("background").counts()).pending == 0


async def test_log_lines_per_request_are_limited(api: Api) -> None:
    query = '{ recentJobs(queueName: "background") { logs(last: 5000) } }'
    await api.data('mutation { addJob(queueName: "background", type: "ok") { id } }')
    assert code_of(await api.gql(query)) == "LIMIT_EXCEEDED"


async def test_batched_requests_are_refused(api: Api) -> None:
    response = await api.post([{"query": "{ queues { name } }"}] * 2)
    assert response.status_code == 400
    assert code_of(response.json()) == "BAD_REQUEST"


async def test_introspection_is_off_in_production(api: Api) -> None:
    result = await api.gql("{ __schema { queryType { name } } }")
    assert code_of(result) == "INTROSPECTION_DISABLED"
    assert code_of(await api.gql('{ __type(name: "Job") { name } }')) == "INTROSPECTION_DISABLED"


async def test_introspection_is_on_in_development_mode(start_api: StartApi) -> None:
    api = await start_api(production=False)
    result = await api.data("{ __schema { queryType { name } } }")
    assert result["__schema"]["queryType"]["name"] == "Query"


async def test_unexpected_errors_are_masked(api: Api, api_app: Conveyor) -> None:
    await api_app.client.set(api_app.queue("background").keys.meta, "not a hash")  # WRONGTYPE on read
    result = await api.gql('{ queue(name: "background") { isPaused } }')
    assert code_of(result) == "INTERNAL_SERVER_ERROR"
    assert "WRONGTYPE" not in str(result)
    assert result["errors"][0]["message"].startswith("Internal server error")


async def test_unknown_fields_get_a_validation_code(api: Api) -> None:
    assert code_of(await api.gql("{ nope }")) == "GRAPHQL_VALIDATION_FAILED"
    assert code_of(await api.gql("{ queues { ")) == "GRAPHQL_PARSE_FAILED"
