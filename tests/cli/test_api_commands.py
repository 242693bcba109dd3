"""`conveyor token` manages API tokens; `conveyor serve` runs the API without a worker."""

from __future__ import annotations

import asyncio
import json
import signal
import socket

import httpx

from tests.cli.conftest import Cli


def test_token_create_list_revoke(conveyor_cli: Cli) -> None:
    created = conveyor_cli.invoke("token", "create", "--name", "ci", "--role", "operator", "--queue", "indexing")
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("cvy_")
    listed = conveyor_cli.invoke("token", "list", "--json")
    (info,) = json.loads(listed.output)
    assert (info["name"], info["role"], info["queues"]) == ("ci", "operator", ["indexing"])
    assert token not in listed.output  # secrets are never shown again
    assert conveyor_cli.invoke("token", "revoke", info["id"]).exit_code == 0
    assert json.loads(conveyor_cli.invoke("token", "list", "--json").output) == []
    assert conveyor_cli.invoke("token", "revoke", info["id"]).exit_code == 1


def test_token_for_an_unknown_queue_is_a_usage_error(conveyor_cli: Cli) -> None:
    result = conveyor_cli.invoke("token", "create", "--name", "x", "--queue", "nope")
    assert result.exit_code == 2


async def test_serve_answers_graphql_and_stops_cleanly_on_sigterm(conveyor_cli: Cli) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = conveyor_cli.start("serve", "--port", str(port))
    token = (await conveyor_cli.ainvoke("token", "create", "--name", "t", "--role", "viewer")).output.strip()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        for _ in range(100):
            try:
                if (await http.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        answer = await http.post(
            "/graphql", json={"query": "{ queues { name } }"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        assert {q["name"] for q in answer.json()["data"]["queues"]} >= {"indexing", "background"}
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 20) == 0, conveyor_cli.output(proc)
