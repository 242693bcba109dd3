"""Errors of AI processing. Retryable ones carry the server's `Retry-After`, when it sent one; a 429 or 503
that says how long to wait becomes the queue's rate-limit wait (`as_rate_limit`), which uses no attempt."""

from __future__ import annotations

from conveyor.app import NonRetryableError, RateLimitedError
from conveyor.errors import ConveyorError


class AIError(ConveyorError):
    """Base of AI processing's retryable errors."""


class ProviderUnavailableError(AIError):
    """The model endpoint is rate limiting (429), failing (5xx), unreachable or too slow: retry later.

    `retry_after_ms` is the server's `Retry-After`, if any, so that a retry policy can wait at least that long.
    """

    def __init__(self, message: str, *, status: int | None = None, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_ms = retry_after_ms


RATE_LIMIT_STATUSES = frozenset({429, 503})


def as_rate_limit(error: ProviderUnavailableError) -> RateLimitedError | None:
    """The queue's "run again later, without counting an attempt" for a 429 or 503 that said how long to wait
    (`Retry-After`); None for other failures, which use an attempt. The worker fails the job instead when the
    wait would pass its deadline."""
    if error.status not in RATE_LIMIT_STATUSES or error.retry_after_ms is None:
        return None
    return RateLimitedError(error.retry_after_ms, f"the model endpoint is rate limiting ({error.status})")


class ProviderRejectedError(NonRetryableError):
    """The endpoint refused the request (a 4xx other than 429: bad key, unknown model, request too large) or
    answered with something that is not a completion. Retrying the same request would not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProviderConfigError(NonRetryableError):
    """The provider settings are incomplete (e.g. no model for an HTTP provider)."""


class SourceUnavailableError(NonRetryableError):
    """The file to process is missing, binary or too large."""
