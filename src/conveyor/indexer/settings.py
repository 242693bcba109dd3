"""Settings of the codebase indexer, read from the environment (and `.env`) beside Conveyor's own."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.indexer.budget import DEFAULT_SEARCH_TIMEOUT_S
from conveyor.indexer.walker import DEFAULT_MAX_FILE_BYTES

INDEX_FILENAME = "index.sqlite"


class IndexerSettings(BaseSettings):
    """`CONVEYOR_INDEX_PATH` (default `<CONVEYOR_DATA_DIR>/index.sqlite`), `CONVEYOR_INDEX_MAX_FILE_BYTES`
    (larger files are not indexed), `CONVEYOR_INDEX_WATCH_DEBOUNCE_MS` (how long after a file's last save
    watch mode indexes it) and `CONVEYOR_SEARCH_TIMEOUT_S` (how long one search may run before it is stopped
    with an error). Semantic search: `CONVEYOR_EMBED_PROVIDER` (`offline`, `openai` or `off`),
    `CONVEYOR_EMBED_BASE_URL`, `CONVEYOR_EMBED_MODEL` and `CONVEYOR_EMBED_API_KEY` (for `openai`),
    `CONVEYOR_EMBED_BATCH` (symbols per `embed` job and request) and `CONVEYOR_EMBED_TIMEOUT_S`."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    conveyor_index_path: Path | None = None
    conveyor_index_max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, gt=0)
    conveyor_index_watch_debounce_ms: int = Field(default=500, ge=0, le=60_000)
    conveyor_search_timeout_s: float = Field(default=DEFAULT_SEARCH_TIMEOUT_S, gt=0, le=600)
    # Semantic search (see `conveyor.indexer.embedding`): `offline` (WordLlama, weights inside its wheel),
    # `openai` (any OpenAI-compatible `/embeddings` endpoint) or `off` (no embed jobs are enqueued).
    conveyor_embed_provider: Literal["offline", "openai", "off"] = "offline"
    conveyor_embed_base_url: str = "https://api.openai.com/v1"
    conveyor_embed_model: str = "text-embedding-3-small"
    conveyor_embed_api_key: SecretStr | None = None
    conveyor_embed_batch: int = Field(default=256, ge=1, le=2048)
    conveyor_embed_timeout_s: float = Field(default=30.0, gt=0, le=600)

    def index_path(self, data_dir: Path, override: str | Path | None = None) -> Path:
        """The database file: an explicit `override` (e.g. from a job payload), else the configured path, else
        `index.sqlite` in the data dir. Relative paths are taken from the current directory."""
        chosen = Path(override) if override else self.conveyor_index_path or Path(data_dir) / INDEX_FILENAME
        return chosen.expanduser().resolve()
