"""While Redis is away a token cannot be checked: the API says so (503 over HTTP, 1013 "try again later" on a
websocket) instead of failing as if the server were broken or gone, and serves again once Redis is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from websockets.exceptions import ConnectionClosed

from conveyor import Conveyor, load_settings
from conveyor.redis.embedded import EmbeddedRedis
from tests.api.conftest import StartApi
from tests.api.test_subscriptions import STATS
from tests.api.worker_app import register_handlers
from tests.conftest import OwnRedisFactory


@pytest.fixture
async def redis_server(own_redis: OwnRedisFactory) -> EmbeddedRedis:
    return own_redis(transport="tcp")


@pytest.fixture
async def api_app(redis_server: EmbeddedRedis) -> AsyncIterator[Conveyor]:
    """The served app, on a Redis of the test's own that it can stop."""
    app = register_handlers(Conveyor(load_settings(redis_url=redis_server.url)))
    await app.connect()
    yield app
    await app.close()


async def test_a_request_with_a_token_gets_503_redis_unavailable_and_is_served_once_redis_is_back(
    start_api: StartApi, redis_server: EmbeddedRedis
) -> None:
    api = await start_api()
    await asyncio.to_thread(redis_server.stop)
    response = await api.post({"query": "{ me { role } }"}, token="viewer")
    assert response.status_code == 503
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "REDIS_UNAVAILABLE"
    assert "Redis is unavailable" in body["errors"][0]["message"]

    await asyncio.to_thread(redis_server.start)
    assert (await api.data("{ me { role } }", token="viewer"))["me"]["role"] == "VIEWER"


async def test_a_websocket_with_a_token_is_closed_with_try_again_later_and_connects_once_redis_is_back(
    start_api: StartApi, redis_server: EmbeddedRedis
) -> None:
    api = await start_api()
    await asyncio.to_thread(redis_server.stop)
    async with api.ws("viewer", init=False) as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.init({"authorization": f"Bearer {api.tokens['viewer']}"})
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013
    assert "Redis is unavailable" in closed.value.rcvd.reason

    await asyncio.to_thread(redis_server.start)
    async with api.ws("viewer") as client:
        op = await client.subscribe(STATS)
        assert (await client.next_data(op))["queueStats"]["isPaused"] is False


async def test_a_scrape_with_a_token_gets_503_redis_unavailable_and_a_public_one_gets_redis_up_0(
    start_api: StartApi, redis_server: EmbeddedRedis
) -> None:
    api = await start_api()
    public = await start_api(metrics_public=True)
    await asyncio.to_thread(redis_server.stop)
    response = await api.http.get("/metrics", headers={"Authorization": f"Bearer {api.tokens['viewer']}"})
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"]["code"] == "REDIS_UNAVAILABLE"
    scrape = await public.http.get("/metrics")
    assert scrape.status_code == 200
    assert "conveyor_redis_up 0.0" in scrape.text
