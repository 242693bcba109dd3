"""The API's answer when Redis is out of memory: a stable `REDIS_OUT_OF_MEMORY` code and a message that says
nothing was written and what to do, not a masked internal error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from conveyor import Conveyor, load_settings
from conveyor.redis.embedded import EmbeddedRedis
from tests.api.conftest import Api, code_of
from tests.api.worker_app import register_handlers
from tests.support import fill_up

OwnRedisFactory = Callable[..., EmbeddedRedis]


@pytest.fixture
async def api_app(own_redis: OwnRedisFactory) -> AsyncIterator[Conveyor]:
    """The API's app on a private Redis, whose memory limit the test lowers."""
    app = register_handlers(Conveyor(load_settings(redis_url=own_redis().url, conveyor_shutdown_grace_s=2)))
    await app.connect()
    yield app
    await app.close()


async def test_add_job_to_a_full_redis_answers_redis_out_of_memory(api: Api, api_app: Conveyor) -> None:
    await fill_up(api_app.client)
    query = 'mutation { addJob(queueName: "background", type: "echo", data: {}) { id } }'
    result = await api.gql(query)
    assert code_of(result) == "REDIS_OUT_OF_MEMORY"
    message = result["errors"][0]["message"]
    assert "out of memory" in message
    assert "nothing was written" in message
