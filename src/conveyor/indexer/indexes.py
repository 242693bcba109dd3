"""The index databases a process has open, shared by every handler that reads or writes them."""

from __future__ import annotations

import threading
from pathlib import Path

from conveyor.app import Conveyor
from conveyor.indexer.settings import IndexerSettings
from conveyor.indexer.store import CodeIndex


class OpenIndexes:
    """The index databases this process has open, one `CodeIndex` per file, shared by all handlers."""

    def __init__(self, app: Conveyor, settings: IndexerSettings | None = None) -> None:
        self.app = app
        self.settings = settings or IndexerSettings()
        self._open: dict[Path, CodeIndex] = {}
        self._lock = threading.Lock()

    def path(self, override: str | Path | None = None) -> Path:
        """The database file for a payload's `index` (or the configured default)."""
        return self.settings.index_path(self.app.settings.conveyor_data_dir, override)

    def get(self, override: str | Path | None = None) -> CodeIndex:
        """The open index for a payload's `index` (or the configured default)."""
        path = self.path(override)
        with self._lock:
            if path not in self._open:
                self._open[path] = CodeIndex(path, max_file_bytes=self.settings.conveyor_index_max_file_bytes)
            return self._open[path]

    def close(self) -> None:
        """Close every open database."""
        with self._lock:
            for index in self._open.values():
                index.close()
            self._open.clear()
