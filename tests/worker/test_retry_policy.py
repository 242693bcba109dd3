"""The retry policy as a pure function: backoff shapes, jitter, limits, deadlines and server-requested waits."""

from __future__ import annotations

import pytest

from conveyor.worker.errors import DeadlineExceededError, NonRetryableError
from conveyor.worker.retry import backoff_delay_ms, decide_retry


class RemoteSaysWaitError(RuntimeError):
    retry_after_ms = 5000


@pytest.mark.parametrize(("attempts_made", "expected"), [(1, 1000), (2, 2000), (3, 4000), (4, 8000)])
def test_exponential_backoff_doubles_per_attempt(attempts_made: int, expected: int) -> None:
    assert backoff_delay_ms({"type": "exponential", "delay": 1000}, attempts_made) == expected


def test_fixed_backoff_stays_the_same() -> None:
    assert [backoff_delay_ms({"type": "fixed", "delay": 300}, n) for n in (1, 2, 3)] == [300, 300, 300]


@pytest.mark.parametrize(("rand", "expected"), [(0.0, 500), (0.5, 750), (1.0, 1000)])
def test_jitter_spreads_the_delay_between_its_lower_bound_and_the_full_delay(rand: float, expected: int) -> None:
    assert backoff_delay_ms({"type": "fixed", "delay": 1000, "jitter": 0.5}, 1, rand=lambda: rand) == expected


def test_retry_until_attempts_are_used_up() -> None:
    common = {"max_attempts": 3, "backoff": {"type": "fixed", "delay": 10}, "deadline_ms": None, "now_ms": 0}
    assert decide_retry(RuntimeError(), attempts_made=2, **common).retry  # type: ignore[arg-type]
    final = decide_retry(RuntimeError(), attempts_made=3, **common)  # type: ignore[arg-type]
    assert not final.retry
    assert "exhausted" in final.reason


@pytest.mark.parametrize("error", [NonRetryableError("no"), DeadlineExceededError("late")])
def test_non_retryable_failures_are_final(error: Exception) -> None:
    assert not decide_retry(error, attempts_made=1, max_attempts=5, backoff=None, deadline_ms=None, now_ms=0).retry


def test_a_retry_after_the_deadline_is_not_scheduled() -> None:
    decision = decide_retry(
        RuntimeError(), attempts_made=1, max_attempts=5, backoff={"type": "fixed", "delay": 1000},
        deadline_ms=1500, now_ms=1000,
    )  # fmt: skip
    assert not decision.retry
    assert "deadline" in decision.reason


def test_server_requested_wait_longer_than_the_backoff_is_honoured() -> None:
    decision = decide_retry(
        RemoteSaysWaitError(), attempts_made=1, max_attempts=3, backoff={"type": "fixed", "delay": 100},
        deadline_ms=None, now_ms=0,
    )  # fmt: skip
    assert decision.retry
    assert decision.delay_ms == 5000
