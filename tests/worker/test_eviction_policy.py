"""A running worker re-reads Redis' maxmemory-policy: a switch to a policy that evicts (and so can drop jobs)
is logged as a WARNING once, within the check interval, not only when the worker starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from conveyor import Conveyor, load_settings
from conveyor.redis.embedded import EmbeddedRedis
from tests.worker.conftest import running, wait_until

OwnRedisFactory = Callable[..., EmbeddedRedis]


def _changes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "maxmemory-policy changed" in r.getMessage()]


async def test_a_running_worker_warns_once_when_redis_turns_to_an_evicting_policy(
    own_redis: OwnRedisFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = Conveyor(load_settings(redis_url=own_redis().url, conveyor_eviction_check_s=0.2))
    await app.connect()
    try:
        async with running(app.worker(["background"])) as worker:
            await wait_until(lambda: _is(worker.eviction.policy, "noeviction"))
            with caplog.at_level(logging.INFO, logger="conveyor"):
                await app.client.config_set("maxmemory-policy", "allkeys-lru")
                await wait_until(lambda: _is(bool(_changes(caplog)), True), timeout=2)
                await asyncio.sleep(0.6)  # three more checks: no more warnings for the same policy
                warnings = _changes(caplog)
                assert [r.levelno for r in warnings] == [logging.WARNING]
                assert "'allkeys-lru'" in warnings[0].getMessage()
                assert worker.eviction.degraded
                await app.client.config_set("maxmemory-policy", "noeviction")
                await wait_until(lambda: _is(worker.eviction.degraded, False), timeout=2)
        assert any("back to 'noeviction'" in r.getMessage() for r in caplog.records)
    finally:
        await app.close()


async def _is(value: object, expected: object) -> bool:
    return value == expected
