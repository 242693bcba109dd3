"""Settings of the background maintenance tasks, read from the environment (and `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DAY_MS = 86_400_000


class MaintenanceSettings(BaseSettings):
    """`CONVEYOR_CLEANUP_ROOT`: the only folder `cleanup-temp-files` may delete in (default
    `<CONVEYOR_DATA_DIR>/tmp`); `CONVEYOR_MAINTENANCE_EVERY_MS`: how often scheduled maintenance repeats
    (default 24 h); `CONVEYOR_JOB_RETENTION_HOURS`: default age after which `remove-old-jobs` deletes finished
    jobs (default 7 days)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    conveyor_cleanup_root: Path | None = None
    conveyor_maintenance_every_ms: int = Field(default=DAY_MS, ge=1000)
    conveyor_job_retention_hours: float = Field(default=168.0, gt=0)

    def cleanup_root(self, data_dir: Path) -> Path:
        """The allowed root of `cleanup-temp-files`, absolute."""
        return (self.conveyor_cleanup_root or Path(data_dir) / "tmp").expanduser().resolve()
