"""Queue-wide limits are shared, never clobbered: Conveyor writes the limits its configuration sets (from the
first producer or command that connects with it), leaves the ones it does not set as Redis holds them (set by
Node `setGlobalRateLimit` / `setGlobalConcurrency`, written here as Node writes them), and warns on a
disagreement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor import Conveyor, load_settings
from conveyor.config import QueueSettings, RateLimit
from conveyor.queue.limits import QueueLimits
from tests.queue.conftest import running

LIMITED = "limited"


@pytest.fixture
async def make_app(redis_url: str) -> AsyncIterator[Any]:
    apps: list[Conveyor] = []

    async def make(**queue: Any) -> Conveyor:
        app = Conveyor(load_settings(redis_url=redis_url, conveyor_queues={LIMITED: QueueSettings(**queue)}))
        await app.connect()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()


async def set_from_node(app: Conveyor, **fields: int) -> None:
    """What Node's `setGlobalRateLimit(max, duration)` and `setGlobalConcurrency(n)` write."""
    await app.client.hset(f"bull:{LIMITED}:meta", mapping=dict(fields))


async def test_a_worker_without_configured_limits_leaves_limits_set_from_node(make_app: Any) -> None:
    app = await make_app()
    await set_from_node(app, max=7, duration=1000, concurrency=2)
    async with running(app.worker([LIMITED])):
        pass
    assert await app.queue(LIMITED).limits() == QueueLimits(RateLimit(max=7, duration_ms=1000), 2)


async def test_a_configured_limit_is_written_by_the_first_producer_to_connect(make_app: Any) -> None:
    app = await make_app(rate_limit=RateLimit(max=5, duration_ms=2000))
    assert await app.client.hgetall(f"bull:{LIMITED}:meta") == {"max": "5", "duration": "2000"}


async def test_configuring_only_the_rate_limit_keeps_a_global_concurrency_set_elsewhere(make_app: Any) -> None:
    first = await make_app()
    await set_from_node(first, concurrency=3)
    app = await make_app(rate_limit=RateLimit(max=5, duration_ms=1000))
    assert await app.queue(LIMITED).limits() == QueueLimits(RateLimit(max=5, duration_ms=1000), 3)


async def test_a_configured_limit_that_disagrees_with_redis_is_written_with_a_warning(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = await make_app()
    await set_from_node(first, max=10, duration=1000, concurrency=4)
    app = await make_app(rate_limit=RateLimit(max=5, duration_ms=1000), global_concurrency=4)
    assert await app.queue(LIMITED).limits() == QueueLimits(RateLimit(max=5, duration_ms=1000), 4)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # the concurrency agrees
    assert "10 per 1000 ms" in warnings[0]
    assert "5 per 1000 ms" in warnings[0]


async def test_agreeing_limits_are_neither_rewritten_nor_warned_about(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await make_app(global_concurrency=2)
    app = await make_app(global_concurrency=2)
    async with running(app.worker([LIMITED])):
        pass
    assert not [r for r in caplog.records if r.levelname == "WARNING" and "concurrency" in r.getMessage()]


async def test_removed_limits_leave_the_meta_hash(make_app: Any) -> None:
    app = await make_app(rate_limit=RateLimit(max=5, duration_ms=1000), global_concurrency=2)
    await app.queue(LIMITED).remove_limits(rate_limit=True, global_concurrency=True)
    assert await app.queue(LIMITED).limits() == QueueLimits()
