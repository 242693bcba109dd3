"""Fixtures for fault tests: a connected app, and a raw client that writes bytes the way another tool might."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.worker.conftest import app  # noqa: F401 (the same connected app as the runtime tests)


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client without decoding: it writes and reads job hashes as bytes."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()
