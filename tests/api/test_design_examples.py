"""Every GraphQL example of the design note (a verbatim copy in docs/message-queue-design.md), run as written
against a live API server.

The note's ```graphql blocks are operations (run verbatim over HTTP) and one schema (its `type`s and `extend
type Query/Mutation/Subscription`): every operation that schema declares is run with the selection of the
design's own fields, queries and mutations over HTTP, subscriptions over a websocket until their first event.
A block added to the note is covered without touching this test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    EnumTypeDefinitionNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectTypeExtensionNode,
    OperationDefinitionNode,
    TypeNode,
    parse,
)

from conveyor import Conveyor
from conveyor.api.schema import schema_sdl
from tests.api.conftest import Api

NOTE = Path(__file__).resolve().parents[2] / "docs" / "message-queue-design.md"
BLOCKS = re.findall(r"```graphql\n(.*?)```", NOTE.read_text(), flags=re.DOTALL)
OPERATIONS = [block for block in BLOCKS if isinstance(parse(block).definitions[0], OperationDefinitionNode)]
SCHEMAS = [parse(block) for block in BLOCKS if block not in OPERATIONS]
ROOTS = ("Query", "Mutation", "Subscription")


def _root_fields(document: DocumentNode) -> list[tuple[str, str]]:
    """(root type, field name) of every operation the design's schema declares, in the note's order."""
    return [
        (node.name.value, field.name.value)
        for node in document.definitions
        if isinstance(node, ObjectTypeExtensionNode | ObjectTypeDefinitionNode) and node.name.value in ROOTS
        for field in node.fields or ()
    ]


def _design_types(document: DocumentNode) -> dict[str, list[str]]:
    """The design's object types and their fields (`Queue`, `Job`)."""
    return {
        node.name.value: [field.name.value for field in node.fields or ()]
        for node in document.definitions
        if isinstance(node, ObjectTypeDefinitionNode) and node.name.value not in ROOTS
    }


def _named(type_node: TypeNode) -> str:
    while isinstance(type_node, NonNullTypeNode | ListTypeNode):
        type_node = type_node.type
    assert isinstance(type_node, NamedTypeNode)
    return type_node.name.value


def test_the_note_has_graphql_examples() -> None:
    assert len(OPERATIONS) >= 2  # use cases 1 and 3
    assert len(SCHEMAS) == 1
    assert len(_root_fields(SCHEMAS[0])) >= 10


def test_the_design_s_job_states_are_served() -> None:
    def states(document: DocumentNode) -> set[str]:
        return {
            value.name.value
            for node in document.definitions
            if isinstance(node, EnumTypeDefinitionNode) and node.name.value == "JobState"
            for value in node.values or ()
        }

    assert states(SCHEMAS[0])
    assert states(SCHEMAS[0]) <= states(parse(schema_sdl()))


# Values for the design's arguments, by name; `JOB_ID` is replaced by a job the test added.
ARGUMENTS = {
    "name": '"background"',
    "queueName": '"background"',
    "id": "JOB_ID",
    "jobId": "JOB_ID",
    "limit": "10",
    "type": '"cleanup-temp-files"',
    "data": "{dry_run: true}",
}


def _operation(schema: DocumentNode, root: str, field_name: str, job_id: str) -> str:
    """The operation that calls one root field of the design's schema, selecting the design's fields."""
    types = _design_types(schema)
    node = next(
        node
        for node in schema.definitions
        if isinstance(node, ObjectTypeExtensionNode | ObjectTypeDefinitionNode) and node.name.value == root
    )
    field = next(field for field in node.fields or () if field.name.value == field_name)
    arguments = ", ".join(
        f"{arg.name.value}: {ARGUMENTS[arg.name.value].replace('JOB_ID', json.dumps(job_id))}"
        for arg in field.arguments or ()
    )
    selection = types.get(_named(field.type))
    call = f"{field_name}({arguments})" if arguments else field_name
    return f"{root.lower()} {{ {call} {'{ ' + ' '.join(selection) + ' }' if selection else ''} }}"


@pytest.mark.parametrize("block", OPERATIONS, ids=lambda block: " ".join(block.split())[:60])
async def test_each_example_operation_runs_verbatim(api: Api, api_app: Conveyor, block: str) -> None:
    result = await api.gql(block)
    assert "errors" not in result, result
    data = result["data"]
    (field,) = data.values()
    assert field["id"]
    if "state" in field:
        assert field["state"] == "WAITING"  # use case 1: a default-priority job is waiting
    if "delay" in block:  # use case 3: the cleanup runs in 24 h
        job = await api_app.queue("background").get_job(field["id"])
        assert job.state.value == "delayed"


@pytest.mark.parametrize(("root", "field_name"), _root_fields(SCHEMAS[0]), ids=lambda part: str(part))
async def test_each_operation_of_the_design_schema_runs_with_the_designs_fields(
    api: Api, api_app: Conveyor, root: str, field_name: str
) -> None:
    job_id = await api_app.add("background", "cleanup-temp-files", {"dry_run": True}, warn_unserved=False)
    operation = _operation(SCHEMAS[0], root, field_name, job_id)
    if root == "Subscription":
        async with api.ws() as ws:
            op = await ws.subscribe(operation)
            data = await ws.next_data(op)  # at least one event: the snapshot
    else:
        result = await api.gql(operation)
        assert "errors" not in result, (operation, result)
        data = result["data"]
    _assert_sane(field_name, data[field_name], job_id)


def _assert_sane(field_name: str, value: Any, job_id: str) -> None:
    if field_name == "queues":
        assert {queue["name"] for queue in value} >= {"indexing", "ai-processing", "background"}
    elif field_name in ("queue", "queueStats"):
        assert value["name"] == "background"
        assert value["waiting"] + value["active"] >= 0
    elif field_name in ("job", "jobProgress"):
        assert (value["id"], value["queue"], value["state"]) == (job_id, "background", "WAITING")
    elif field_name == "recentJobs":
        assert job_id in [job["id"] for job in value]
    elif field_name == "addJob":
        assert (value["type"], value["state"]) == ("cleanup-temp-files", "WAITING")
    else:
        assert value is True, (field_name, value)  # pauseQueue, resumeQueue, clearQueue
