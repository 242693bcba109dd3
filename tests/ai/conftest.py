"""Fixtures for AI tests: the scripted model server, and apps with the AI handlers on the test's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, load_settings
from conveyor.ai import AISettings, register
from conveyor.indexer import IndexerSettings
from tests.ai.model_server import API_KEY, ModelServer

MakeApp = Callable[..., Coroutine[Any, Any, Conveyor]]


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A fresh scripted model server on a loopback port."""
    server = ModelServer().start()
    yield server
    server.stop()


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "index.sqlite"


@pytest.fixture
async def make_app(
    redis_url: str, tmp_path: Path, index_path: Path, model_server: ModelServer
) -> AsyncIterator[MakeApp]:
    """`await make_app(provider, model)`: a connected app whose AI handlers use the model server."""
    apps: list[Conveyor] = []

    async def make(provider: str = "offline", model: str = "ok", **ai: Any) -> Conveyor:
        settings = load_settings(redis_url=redis_url, conveyor_data_dir=tmp_path / "data", conveyor_shutdown_grace_s=2)
        app = Conveyor(settings)
        base = model_server.url + ("/v1" if provider == "openai" else "")
        options = {"timeout_s": 0.5, "max_retry_wait_s": 2.0, **ai}
        ai_settings = AISettings(provider=provider, base_url=base, model=model, api_key=API_KEY, **options)
        register(app, ai_settings, IndexerSettings(conveyor_index_path=index_path))
        await app.connect()
        apps.append(app)
        return app

    yield make
    for app in apps:
        await app.close()
