"""Conveyor: background jobs for Python on Redis, in BullMQ's data model."""

from conveyor.app import Batch, Conveyor, RateLimitedError, Sandbox, SyncConveyor
from conveyor.config import Settings, load_settings
from conveyor.errors import ConveyorError
from conveyor.queue.job import Job, JobState
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import NewJob, Queue, QueueCounts
from conveyor.worker.context import JobContext
from conveyor.worker.errors import NonRetryableError

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
