"""Errors of producing and managing queues."""

from __future__ import annotations

from conveyor.errors import ConveyorError
from conveyor.redis.errors import RedisUnavailableError


class QueueError(ConveyorError):
    """A queue operation was refused."""


class UnknownQueueError(QueueError):
    """The queue is not configured."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown queue {name!r}. Known queues: {', '.join(sorted(known))}. Add custom queues with CONVEYOR_QUEUES."
        )
        self.name = name


class InvalidQueueNameError(QueueError):
    """A queue name that BullMQ's key layout cannot hold."""


class InvalidPayloadError(QueueError):
    """The payload is not JSON, or does not match the handler's payload model; nothing was written."""

    def __init__(self, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []


class InvalidOptionsError(QueueError):
    """Job options that cannot be used (unknown option, out-of-range value); nothing was written."""

    def __init__(self, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or []


class PayloadTooLargeError(QueueError):
    """The payload is bigger than the configured limit; nothing was written."""


class JobNotFoundError(QueueError):
    """No job with that id in that queue."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(f"No job {job_id!r} in queue {queue!r} (it may have been removed by retention).")
        self.queue = queue
        self.job_id = job_id


class JobStateError(QueueError):
    """The job is not in a state that allows the operation (e.g. retrying a job that has not failed)."""


class QueueBusyError(QueueError):
    """The queue has active jobs; the operation needs `force=True` or the jobs to finish."""


class EnqueueUnconfirmedError(RedisUnavailableError):
    """Redis did not confirm an add (it could not be reached, or its reply was lost): the jobs may or may not
    have been added. Adding them again with the same ids is safe: BullMQ adds nothing for an id that exists."""

    def __init__(self, target: str, reason: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:3]) + (f" and {len(job_ids) - 3} more" if len(job_ids) > 3 else "")
        what = "the job" if len(job_ids) == 1 else f"the {len(job_ids)} jobs"
        super().__init__(
            target,
            f"{reason.rstrip('. ')} ({what} may or may not have been added; adding again with the same job id "
            f"({shown}; see `job_ids`) is safe: an id that exists adds nothing)",
        )
        self.job_ids = job_ids


class EnqueueNotReplicatedError(QueueError):
    """Durable mode (`CONVEYOR_REDIS_WAIT_REPLICAS`): the master added the jobs, but fewer replicas than required
    acknowledged them in time. The jobs are in the queue and will run, unless the master fails before a replica
    copies them. Adding them again with the same ids (`job_ids`) adds nothing and waits for the replicas again."""

    def __init__(self, target: str, job_ids: list[str], acknowledged: int, required: str) -> None:
        shown = ", ".join(job_ids[:3]) + (f" and {len(job_ids) - 3} more" if len(job_ids) > 3 else "")
        what = "the job" if len(job_ids) == 1 else f"the {len(job_ids)} jobs"
        super().__init__(
            f"Redis at {target} added {what} ({shown}) on the master, but only {acknowledged} replica(s) "
            f"acknowledged, of {required} (CONVEYOR_REDIS_WAIT_REPLICAS, CONVEYOR_REDIS_WAIT_TIMEOUT_MS): "
            f"{what} will run unless the master fails before a replica copies it. Adding again with the same "
            "job id (see `job_ids`) adds nothing and waits for the replicas again; check the replicas "
            "(INFO replication, SENTINEL REPLICAS <master>)."
        )
        self.job_ids = job_ids
        self.acknowledged = acknowledged


class ScheduleNotReplicatedError(QueueError):
    """Durable mode (`CONVEYOR_REDIS_WAIT_REPLICAS`): the master saved the schedule, but fewer replicas than
    required acknowledged it in time. Saving it again is safe (the same spec keeps its next tick)."""

    def __init__(self, key: str, acknowledged: int, required: str) -> None:
        super().__init__(
            f"Schedule {key!r} was saved on the Redis master, but only {acknowledged} replica(s) acknowledged it, of "
            f"{required} (CONVEYOR_REDIS_WAIT_REPLICAS, CONVEYOR_REDIS_WAIT_TIMEOUT_MS): it is lost if the master "
            "fails before a replica copies it. Save it again once the replicas are back (INFO replication)."
        )
        self.key = key
        self.acknowledged = acknowledged


class UnsupportedLayoutError(QueueError):
    """The queue was last written by a BullMQ release whose key layout Conveyor cannot run (e.g. bullmq 4.x)."""
