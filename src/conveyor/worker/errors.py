"""Errors a job attempt can end with. Raise `NonRetryableError` from a handler to fail without retries."""

from __future__ import annotations

from conveyor.errors import ConveyorError


class JobFailureError(ConveyorError):
    """Base of the failures the runtime itself assigns to an attempt."""

    retryable = True


class NonRetryableError(JobFailureError):
    """Raise from a handler to fail the job at once, skipping remaining attempts."""

    retryable = False


class JobTimeoutError(JobFailureError):
    """The attempt ran longer than the job's timeout; the retry policy decides what happens next."""


class DeadlineExceededError(JobFailureError):
    """The job's deadline passed before it finished; it is not retried."""

    retryable = False


class JobCancelledError(JobFailureError):
    """The job was cancelled while it ran; it is not retried."""

    retryable = False


class UnknownJobTypeError(JobFailureError):
    """No handler is registered for the job's queue and type; it is not retried."""

    retryable = False


class JobRefusedError(JobFailureError):
    """Not a failure: this worker has no handler for the job's type, so it puts the job back for `retry_after_ms`
    (without counting an attempt) for a worker that has one. `fields` are stored in the job's hash."""

    def __init__(self, retry_after_ms: int, fields: dict[str, str], message: str) -> None:
        super().__init__(message)
        self.retry_after_ms = max(1, int(retry_after_ms))
        self.fields = fields


class InvalidJobPayloadError(JobFailureError):
    """The stored payload does not match the handler's payload model; it is not retried."""

    retryable = False


class RateLimitedError(JobFailureError):
    """Raise from a handler when the remote side says "slow down": the job runs again after `retry_after_ms`
    and the attempt is not counted (the job did nothing wrong)."""

    def __init__(self, retry_after_ms: int, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after_ms} ms")
        self.retry_after_ms = max(1, int(retry_after_ms))


class MalformedJobError(JobFailureError):
    """The job's hash in Redis cannot be run as it is (see `conveyor.worker.fetched`): the job fails at once."""

    retryable = False
