"""Fixtures for maintenance tests: an app with the maintenance handlers and an allowed cleanup root."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor import Conveyor, load_settings
from conveyor.indexer import IndexerSettings
from conveyor.maintenance import MaintenanceSettings, register


@pytest.fixture
def cleanup_root(tmp_path: Path) -> Path:
    root = tmp_path / "scratch"
    root.mkdir()
    return root


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "index.sqlite"


@pytest.fixture
async def app(redis_url: str, tmp_path: Path, cleanup_root: Path, index_path: Path) -> AsyncIterator[Conveyor]:
    settings = load_settings(redis_url=redis_url, conveyor_data_dir=tmp_path / "data", conveyor_shutdown_grace_s=2)
    conveyor = Conveyor(settings)
    register(
        conveyor,
        MaintenanceSettings(conveyor_cleanup_root=cleanup_root),
        IndexerSettings(conveyor_index_path=index_path),
    )
    await conveyor.connect()
    yield conveyor
    await conveyor.close()
