"""Errors of AI processing. Retryable ones carry the server's `Retry-After`, when it sent one."""

from __future__ import annotations

from conveyor.app import NonRetryableError
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
