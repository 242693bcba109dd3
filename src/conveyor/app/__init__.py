"""The application object that ties settings, queues, handlers and workers together."""

from conveyor.app.conveyor import Conveyor, NotConnectedError
from conveyor.app.sync import SyncConveyor
from conveyor.worker.batching import Batch
from conveyor.worker.context import JobContext, JobInfo
from conveyor.worker.errors import NonRetryableError, RateLimitedError
from conveyor.worker.redact import redact_secrets
from conveyor.worker.sandbox import Sandbox

# Handlers (and the domain packages) need these; they come from the app layer so nothing above it imports worker.
__all__ = [
    "Batch",
    "Conveyor",
    "JobContext",
    "JobInfo",
    "NonRetryableError",
    "NotConnectedError",
    "RateLimitedError",
    "Sandbox",
    "SyncConveyor",
    "redact_secrets",
]
