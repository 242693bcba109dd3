"""Conveyor: background jobs for Python on Redis, in BullMQ's data model.

The names below are imported when first used (`from conveyor import Conveyor` imports the app, with redis-py and
pydantic): the `conveyor` command imports this package before it pauses the cyclic collector for its start-up
imports (`conveyor.cli.startup`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.app import Batch, Conveyor, RateLimitedError, Sandbox, SyncConveyor
    from conveyor.config import Settings, load_settings
    from conveyor.errors import ConveyorError
    from conveyor.queue.job import Job, JobState
    from conveyor.queue.options import JobOptions
    from conveyor.queue.queue import NewJob, Queue, QueueCounts
    from conveyor.worker.context import JobContext
    from conveyor.worker.errors import NonRetryableError

_EXPORTS = {
    "Batch": "conveyor.app",
    "Conveyor": "conveyor.app",
    "ConveyorError": "conveyor.errors",
    "Job": "conveyor.queue.job",
    "JobContext": "conveyor.worker.context",
    "JobOptions": "conveyor.queue.options",
    "JobState": "conveyor.queue.job",
    "NewJob": "conveyor.queue.queue",
    "NonRetryableError": "conveyor.worker.errors",
    "Queue": "conveyor.queue.queue",
    "QueueCounts": "conveyor.queue.queue",
    "RateLimitedError": "conveyor.app",
    "Sandbox": "conveyor.app",
    "Settings": "conveyor.config",
    "SyncConveyor": "conveyor.app",
    "load_settings": "conveyor.config",
}

__all__ = [
    "Batch",
    "Conveyor",
    "ConveyorError",
    "Job",
    "JobContext",
    "JobOptions",
    "JobState",
    "NewJob",
    "NonRetryableError",
    "Queue",
    "QueueCounts",
    "RateLimitedError",
    "Sandbox",
    "Settings",
    "SyncConveyor",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up here from now on
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
