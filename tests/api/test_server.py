"""The HTTP surface: health and readiness, POST-only JSON, IDE and CORS by mode, body size."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import redis

from conveyor import Conveyor
from conveyor.api import ApiConfig, serve
from tests.api.conftest import Api, StartApi, running_worker

QUEUES = "{ queues { name } }"


async def test_healthz_answers_without_a_token(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_when_redis_answers_without_eviction(api: Api) -> None:
    response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json()["evictionPolicy"] == "noeviction"


async def test_readyz_needs_a_live_worker_when_configured_to(start_api: StartApi, api_app: Conveyor) -> None:
    api = await start_api(ready_requires_workers=True)
    response = await api.http.get("/readyz")
    assert response.status_code == 503
    assert "no live worker" in response.json()["reason"]
    async with running_worker(api_app, "background"):
        response = await api.http.get("/readyz")
        assert response.status_code == 200
        assert response.json()["workers"] == 1


async def test_readyz_fails_while_redis_may_evict_jobs(api: Api, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        response = await api.http.get("/readyz")
    finally:
        client.config_set("maxmemory-policy", "noeviction")
        client.close()
    assert response.status_code == 503
    assert "allkeys-lru" in response.json()["reason"]


async def test_queries_over_get_are_refused(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.tokens['admin']}"}
    response = await api.http.get("/graphql", params={"query": QUEUES}, headers=headers)
    assert response.status_code == 405
    assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_form_posts_are_refused(api: Api) -> None:
    response = await api.post(token="admin", content=f"query={QUEUES}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_graphiql_is_off_in_production(api: Api) -> None:
    response = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 405
    assert "graphiql" not in response.text.lower()


async def test_graphiql_is_served_in_development_mode(start_api: StartApi) -> None:
    api = await start_api(production=False)
    response = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_cors_is_off_unless_configured(api: Api) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    response = await api.http.options("/graphql", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    response = await api.post({"query": QUEUES}, headers={"Origin": "https://app.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_cors_allows_configured_origins_only(start_api: StartApi) -> None:
    api = await start_api(cors_origins=("https://app.example",))
    allowed = await api.http.options(
        "/graphql", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = await api.http.options(
        "/graphql", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


async def test_body_over_the_request_limit_is_refused_with_413(start_api: StartApi, api_app: Conveyor) -> None:
    api = await start_api(max_request_bytes=4096)
    query = 'mutation($d: JSON) { addJob(queueName: "background", type: "ok", data: $d) { id } }'
    response = await api.post({"query": query, "variables": {"d": "x" * 5000}})
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TOO_LARGE"
    assert (await api_app.queue("background").counts()).pending == 0


async def test_server_header_is_not_sent(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert "server" not in response.headers


async def test_cancelling_serve_shuts_the_server_down_gracefully(api_app: Conveyor) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    config = ApiConfig(port=port, ready_requires_workers=False, shutdown_grace_s=1)
    task = asyncio.create_task(serve(api_app, config, handle_signals=False))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(200):
            try:
                assert (await client.get("/healthz")).status_code == 200
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the server did not start")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(httpx.ConnectError):
            await client.get("/healthz")
