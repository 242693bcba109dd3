"""Fixtures for fault tests: a connected app, and a raw client that writes bytes the way another tool might."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from conveyor import Conveyor, load_settings


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A Conveyor connected to the test's (empty) Redis, with short shutdown grace."""
    conveyor = Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=2))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client without decoding: it writes and reads job hashes as bytes."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
