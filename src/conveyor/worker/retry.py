"""Retry policy: whether a failed attempt is retried, and after which backoff delay."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def backoff_delay_ms(
    backoff: dict[str, Any] | None, attempts_made: int, rand: Callable[[], float] = random.random
) -> int:
    """The delay before the next attempt, after `attempts_made` attempts (1 for the first retry).

    Exponential doubles the base delay per attempt (1 s, 2 s, 4 s …). Jitter j in 0..1 spreads the delay
    uniformly over [delay * (1 - j), delay], so retries of many jobs do not arrive together.
    """
    if not backoff:
        return 0
    base = int(backoff.get("delay") or 0)
    delay = base * 2 ** (attempts_made - 1) if backoff.get("type") == "exponential" else base
    jitter = float(backoff.get("jitter") or 0)
    if jitter > 0:
        delay = int(delay * (1 - jitter) + rand() * delay * jitter)
    return max(0, int(delay))


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """After a failed attempt: retry after `delay_ms`, or fail for good (`retry` False) with `reason`."""

    retry: bool
    delay_ms: int = 0
    reason: str = ""


def decide_retry(
    error: BaseException,
    *,
    attempts_made: int,
    max_attempts: int,
    backoff: dict[str, Any] | None,
    deadline_ms: int | None,
    now_ms: int,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Whether a job whose attempt number `attempts_made` just failed gets another attempt, and when.

    Non-retryable errors and exhausted attempts fail the job. A retry that could only start after the
    job's deadline fails it as deadline-exceeded instead of waiting for nothing.
    """
    if not getattr(error, "retryable", True):
        return RetryDecision(False, reason="not retryable")
    if attempts_made >= max_attempts:
        return RetryDecision(False, reason=f"attempts exhausted ({attempts_made}/{max_attempts})")
    delay = backoff_delay_ms(backoff, attempts_made, rand)
    # An error may say how long the remote side wants us to wait (e.g. HTTP Retry-After): wait at least that.
    delay = max(delay, int(getattr(error, "retry_after_ms", 0) or 0))
    if deadline_ms is not None and now_ms + delay >= deadline_ms:
        return RetryDecision(False, reason="deadline exceeded before the next attempt")
    return RetryDecision(True, delay_ms=delay)
