"""Fixtures for API tests: a real uvicorn server on a random loopback port, tokens of each role, HTTP and
graphql-transport-ws clients, and worker processes."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from conveyor import Conveyor, load_settings
from conveyor.api import ApiConfig, ApiServer, TokenStore
from tests.api.worker_app import register_handlers
from tests.support import ProcessGroup, running

ROOT = Path(__file__).resolve().parents[2]
WS_PROTOCOL = "graphql-transport-ws"


class WsClient:
    """A minimal graphql-transport-ws client."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = 0

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        return await self.receive()

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._ids += 1
        op_id = str(self._ids)
        message = {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        await self.ws.send(json.dumps(message))
        return op_id

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))

    async def receive(self, within: float = 15.0) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), within))
            if message.get("type") != "ping":
                return message
            await self.ws.send(json.dumps({"type": "pong"}))

    async def next_data(self, op_id: str, within: float = 15.0) -> dict[str, Any]:
        """The data of the next `next` message of an operation (fails on error or complete)."""
        message = await self.receive(within)
        assert message.get("id") == op_id, message
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data


class Api:
    """A running API server and ways to talk to it."""

    def __init__(self, app: Conveyor, server: ApiServer, tokens: dict[str, str]) -> None:
        self.app = app
        self.server = server
        self.tokens = tokens
        self.url = f"http://127.0.0.1:{server.port}"
        self.http = httpx.AsyncClient(base_url=self.url, timeout=30)

    async def post(self, body: Any = None, *, token: str | None = "admin", **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens.get(token, token)}")
        if body is not None:
            kwargs["json"] = body
        return await self.http.post("/graphql", headers=headers, **kwargs)

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = "admin"
    ) -> dict[str, Any]:
        """The JSON response of a query (data and errors)."""
        response = await self.post({"query": query, "variables": variables or {}}, token=token)
        result: dict[str, Any] = response.json()
        return result

    async def data(self, query: str, variables: dict[str, Any] | None = None, *, token: str = "admin") -> Any:
        """The data of a query that must succeed."""
        result = await self.gql(query, variables, token=token)
        assert "errors" not in result, result
        return result["data"]

    @asynccontextmanager
    async def ws(self, token: str | None = "admin", *, init: bool = True, **kwargs: Any) -> AsyncIterator[WsClient]:
        """A graphql-transport-ws connection, initialised with the token's `authorization` payload."""
        url = f"ws://127.0.0.1:{self.server.port}/graphql"
        async with connect(url, subprotocols=[WS_PROTOCOL], **kwargs) as ws:  # type: ignore[list-item]
            client = WsClient(ws)
            if init:
                payload = {"authorization": f"Bearer {self.tokens.get(token, token)}"} if token else {}
                ack = await client.init(payload)
                assert ack["type"] == "connection_ack", ack
            yield client


def code_of(result: dict[str, Any]) -> str:
    """The code of a response's first error."""
    assert result.get("errors"), result
    code: str = result["errors"][0]["extensions"]["code"]
    return code


StartApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def api_app(redis_url: str) -> AsyncIterator[Conveyor]:
    """The app the API serves (the test's Redis; a payload model on indexing/index-file; test handlers)."""
    app = register_handlers(Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2)))
    await app.connect()
    yield app
    await app.close()


@pytest.fixture
async def start_api(api_app: Conveyor) -> AsyncIterator[StartApi]:
    """Start API servers (config keywords override the test defaults); all are stopped after the test."""
    running: list[tuple[Api, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Api:
        settings: dict[str, Any] = {"production": True, "ready_requires_workers": False, "shutdown_grace_s": 1}
        config = ApiConfig(**{**settings, **overrides})
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        server = ApiServer(api_app, config, sock=sock, handle_signals=False)
        task = asyncio.create_task(server.serve())
        await server.wait_started()
        store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
        tokens = {role: (await store.create(f"test {role}", role)).token for role in ("viewer", "operator", "admin")}
        api = Api(api_app, server, tokens)
        running.append((api, task))
        return api

    yield start
    for api, task in running:
        await api.http.aclose()
        api.server.request_stop()
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def api(start_api: StartApi) -> Api:
    """An API server in production mode with tokens for each role."""
    return await start_api()


class WorkerProcesses(ProcessGroup):
    """Worker processes of `tests/api/worker_app.py`, stopped after the test."""

    def start(self, *queues: str) -> subprocess.Popen[bytes]:
        return self.spawn("tests.api.worker_app", ",".join(queues or ("background",)))


@pytest.fixture
def worker_processes(redis_url: str) -> Iterator[WorkerProcesses]:
    """Start API-test worker processes against the test's Redis."""
    procs = WorkerProcesses(redis_url)
    yield procs
    procs.stop_all()


@asynccontextmanager
async def running_worker(app: Conveyor, *queues: str) -> AsyncIterator[None]:
    """Run a worker of the app in this event loop for the duration of the block (from its first heartbeat)."""
    async with running(app.worker(list(queues or ("background",)))):
        yield
