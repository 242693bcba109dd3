"""Fixtures for indexer tests: an app with the indexer's handlers on the test's Redis, and a sample repo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor import Conveyor, load_settings
from conveyor.indexer import IndexerSettings, register
from tests.indexer.helpers import write_sample_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A generated multi-language repository."""
    return write_sample_repo(tmp_path / "repo")


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    """Where the test's index database lives."""
    return tmp_path / "data" / "index.sqlite"


@pytest.fixture
async def app(redis_url: str, tmp_path: Path, index_path: Path) -> AsyncIterator[Conveyor]:
    """A Conveyor on the test's Redis with the indexer registered (the test's index file)."""
    settings = load_settings(redis_url=redis_url, conveyor_data_dir=tmp_path / "data", conveyor_shutdown_grace_s=2)
    conveyor = Conveyor(settings)
    register(conveyor, IndexerSettings(conveyor_index_path=index_path))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()
