"""Production mode answers misspelt names without "Did you mean …?" (they would reveal the schema that
introspection is turned off to keep); development mode keeps the hints."""

from __future__ import annotations

import pytest

from tests.api.conftest import Api, StartApi, code_of

MISSPELT = {
    "field": "{ queus { name } }",
    "nested field": "{ queues { nam } }",
    "argument": '{ queue(nme: "background") { name } }',
    "enum value": '{ jobs(queue: "background", states: [FAILD]) { nodes { id } } }',
    "input field": 'mutation { addJob(queueName: "background", type: "ok", options: {dela: 5}) { id } }',
    "type": 'query($s: [JobStat!]) { jobs(queue: "background", states: $s) { nodes { id } } }',
}


@pytest.mark.parametrize("what", sorted(MISSPELT))
async def test_production_mode_suggests_no_names(api: Api, what: str) -> None:
    result = await api.gql(MISSPELT[what])
    assert code_of(result) == "GRAPHQL_VALIDATION_FAILED"
    messages = [error["message"] for error in result["errors"]]
    assert not [m for m in messages if "Did you mean" in m], messages


async def test_production_mode_suggests_no_enum_value_in_variables(api: Api) -> None:
    query = 'query($s: [JobState!]) { jobs(queue: "background", states: $s) { nodes { id } } }'
    result = await api.gql(query, {"s": ["FAILD"]})
    assert code_of(result) == "BAD_USER_INPUT"
    assert "Did you mean" not in result["errors"][0]["message"], result


async def test_development_mode_keeps_suggestions(start_api: StartApi) -> None:
    api = await start_api(production=False)
    result = await api.gql(MISSPELT["field"])
    assert "Did you mean" in result["errors"][0]["message"], result


async def test_production_mode_suggests_no_names_over_websockets(api: Api) -> None:
    async with api.ws("viewer") as ws:
        await ws.subscribe('subscription { queueStat(queueName: "background") { name } }')
        message = await ws.receive()
    assert message["type"] == "error", message
    assert "Did you mean" not in str(message["payload"]), message
