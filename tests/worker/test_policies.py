"""The policies of an attempt judged without Redis: what becomes of a job whose attempt failed, at `now`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conveyor.worker.active import ActiveJob
from conveyor.worker.context import JobInfo
from conveyor.worker.errors import DeadlineExceededError, JobRefusedError, NonRetryableError, RateLimitedError
from conveyor.worker.fetched import CheckedJob
from conveyor.worker.policies import DeadlinePolicy, Policies, RetryPolicy, Verdict

NOW = 1_000_000


def job(attempt: int = 1, **opts: Any) -> ActiveJob:
    info = JobInfo("1", "q", "t", attempt, int(opts.get("attempts", 1)), "w")
    ctx = SimpleNamespace(job=info)  # the policies read only the job's facts
    return ActiveJob("1", "token", {}, opts, ctx, CheckedJob("t", {}, opts, attempt - 1))  # type: ignore[arg-type]


POLICIES = Policies([DeadlinePolicy(), RetryPolicy()])


@pytest.mark.parametrize(
    ("held", "error", "verdict", "delay_ms", "recorded"),
    [
        pytest.param(job(), RateLimitedError(500), Verdict.PUT_OFF, 500, RateLimitedError, id="rate-limited"),
        pytest.param(
            job(deadline=NOW + 100), RateLimitedError(500), Verdict.FAIL, 0, DeadlineExceededError,
            id="a rate-limit wait past the deadline fails it now",
        ),
        pytest.param(
            job(deadline=NOW + 1000), RateLimitedError(500), Verdict.PUT_OFF, 500, RateLimitedError,
            id="a rate-limit wait within the deadline waits",
        ),
        pytest.param(
            job(), JobRefusedError(300, {}, "no handler"), Verdict.PUT_OFF, 300, JobRefusedError, id="refused"
        ),
        pytest.param(
            job(attempts=3, backoff={"type": "fixed", "delay": 250}), RuntimeError(), Verdict.RETRY, 250,
            RuntimeError, id="retried after its backoff",
        ),
        pytest.param(job(attempt=3, attempts=3), RuntimeError(), Verdict.FAIL, 0, RuntimeError, id="attempts used up"),
        pytest.param(job(attempts=3), NonRetryableError("no"), Verdict.FAIL, 0, NonRetryableError, id="not retryable"),
        pytest.param(
            job(attempts=3, deadline=NOW + 100, backoff={"type": "fixed", "delay": 250}), RuntimeError(),
            Verdict.FAIL, 250, RuntimeError, id="a retry that would start past the deadline",
        ),
    ],
)  # fmt: skip
def test_a_failed_attempt_is_judged_by_the_policies_in_order(
    held: ActiveJob, error: BaseException, verdict: Verdict, delay_ms: int, recorded: type[BaseException]
) -> None:
    failure = POLICIES.judge(held, error, NOW)
    assert failure.verdict is verdict
    assert isinstance(failure.error, recorded)
    if verdict is not Verdict.FAIL:
        assert failure.delay_ms == delay_ms


def test_a_failure_no_policy_decides_fails_for_good() -> None:
    assert Policies([]).judge(job(attempts=5), RuntimeError(), NOW).verdict is Verdict.FAIL


async def test_the_deadline_policy_sets_the_time_limit_to_the_sooner_of_timeout_and_deadline() -> None:
    held = job(timeout=5000, deadline=NOW + 2000)
    await DeadlinePolicy().before_attempt(held, NOW)
    assert held.time_limit == (2.0, True)


async def test_a_job_past_its_deadline_does_not_start() -> None:
    with pytest.raises(DeadlineExceededError):
        await DeadlinePolicy().before_attempt(job(deadline=NOW), NOW)


def test_only_the_policies_that_act_before_an_attempt_are_awaited_before_one() -> None:
    assert len(POLICIES.before) == 1  # the deadline's; the retry policy acts only after a failure
