"""Background maintenance on the `background` queue: `cleanup-temp-files` (only inside an allowed root),
`optimize-index` (prune, FTS optimize, VACUUM) and `remove-old-jobs`, repeating with delayed jobs.

`register(app)` adds the handlers; `ensure_scheduled(app, every_ms)` starts the daily runs.
"""

from __future__ import annotations

from conveyor.maintenance.cleanup import CleanupReport, cleanup_temp_files
from conveyor.maintenance.finished_jobs import remove_finished_jobs
from conveyor.maintenance.jobs import CleanupRequest, OptimizeIndexRequest, RemoveOldJobsRequest, register
from conveyor.maintenance.schedule import SCHEDULED_TYPES, ensure_scheduled
from conveyor.maintenance.settings import MaintenanceSettings

__all__ = [
    "SCHEDULED_TYPES",
    "CleanupReport",
    "CleanupRequest",
    "MaintenanceSettings",
    "OptimizeIndexRequest",
    "RemoveOldJobsRequest",
    "cleanup_temp_files",
    "ensure_scheduled",
    "register",
    "remove_finished_jobs",
]
