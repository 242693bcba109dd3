"""The rules of an attempt, each in one small class on one interface: Dramatiq's middleware, for decisions.

A `Policy` may act at two points of an attempt:

- `before_attempt(job, now_ms)`: raise to fail the attempt before its handler runs (the error is then judged like
  the handler's own); or note something the run needs (the time it may take).
- `after_failure(failure, job, now_ms)`: judge a failed attempt: replace the error to record, or decide what
  becomes of the job (`Verdict`: run again after a delay, put off without counting an attempt, fail for good).
  Policies judge in order; a verdict once given stands.

The policies of a runner, in order:

- `GroupRateLimit` (only with rate-limit groups configured): a job whose `rate_key` group is full waits for the
  group's window, without losing an attempt.
- `DeadlinePolicy`: the attempt's time limit (its timeout, or its deadline if sooner); a job past its deadline
  does not start; a rate-limit wait that would end past the deadline is the deadline's failure now.
- `RetryPolicy`: a rate-limited or refused attempt is put off (not the job's fault); any other failure is
  retried with backoff while attempts and the deadline allow (`conveyor.worker.retry`), else fails for good.

Policies decide; hooks (`conveyor.worker.hooks`) observe and never change an outcome. A final failure's copy into
the dead-letter queue is therefore a hook (`DeadLetterKeeper`): it is made after the failure is stored, off the
job's path, and a sweep finds the ones a dying worker missed.

`Policies` notes, once, which policies act at each point, so a point no policy uses costs nothing per job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from redis.asyncio import Redis

from conveyor.config import RateLimit
from conveyor.queue.options import RATE_KEY_OPTION
from conveyor.redis.keys import ConveyorKeys
from conveyor.worker.active import ActiveJob
from conveyor.worker.errors import DeadlineExceededError, JobRefusedError, RateLimitedError
from conveyor.worker.execution import attempt_budget_s
from conveyor.worker.limits import group_delay_ms
from conveyor.worker.retry import decide_retry


class Verdict(Enum):
    """What becomes of a job whose attempt failed."""

    RETRY = "retry"  # runs again after `Failure.delay_ms`; the attempt counts
    PUT_OFF = "put-off"  # runs again after `Failure.delay_ms`; the attempt does not count
    FAIL = "fail"  # for good


@dataclass(slots=True)
class Failure:
    """A failed attempt as the policies judge it: the error to record, and what becomes of the job."""

    error: BaseException
    verdict: Verdict | None = None  # None until a policy decides
    delay_ms: int = 0


class Policy:
    """Base class: override what applies (see the module docstring)."""

    async def before_attempt(self, job: ActiveJob, now_ms: int) -> None:
        """Raise to fail the attempt before its handler runs."""

    def after_failure(self, failure: Failure, job: ActiveJob, now_ms: int) -> None:
        """Judge a failed attempt: replace `failure.error`, or decide `failure.verdict` if none is decided yet."""


class GroupRateLimit(Policy):
    """Rate-limit groups shared by every worker: at most `limit.max` starts per window per job `rate_key`."""

    def __init__(self, client: Redis, keys: ConveyorKeys, limits: Mapping[str, RateLimit]) -> None:
        self.client = client
        self.keys = keys
        self.limits = limits

    async def before_attempt(self, job: ActiveJob, now_ms: int) -> None:
        """Count the start against the job's group; a full group puts the job off until its window ends."""
        group = job.opts.get(RATE_KEY_OPTION)
        limit = self.limits.get(group) if group else None
        if group and limit and (wait := await group_delay_ms(self.client, self.keys, group, limit)):
            raise RateLimitedError(wait, f"rate-limit group {group!r} is full")


class DeadlinePolicy(Policy):
    """The job's deadline (an absolute time, `opts.deadline`) and the attempt's timeout (`opts.timeout`)."""

    async def before_attempt(self, job: ActiveJob, now_ms: int) -> None:
        """Set the attempt's time limit; raises `DeadlineExceededError` if the deadline has passed."""
        job.time_limit = attempt_budget_s(job.opts.get("timeout"), job.opts.get("deadline"), now_ms)

    def after_failure(self, failure: Failure, job: ActiveJob, now_ms: int) -> None:
        """A rate-limit wait that would end after the job's deadline is the deadline's failure now instead: the
        job could not run again in time, and waiting without counting attempts must not outlast it."""
        error, deadline_ms = failure.error, job.opts.get("deadline")
        if not isinstance(error, RateLimitedError) or not isinstance(deadline_ms, int | float):
            return
        if now_ms + error.retry_after_ms <= deadline_ms:
            return
        exceeded = DeadlineExceededError(f"{error}, which is past the job's deadline")
        exceeded.__cause__ = error
        failure.error = exceeded


class RetryPolicy(Policy):
    """When a failed attempt's job runs again: put off, retried after a backoff, or never (fail for good)."""

    def after_failure(self, failure: Failure, job: ActiveJob, now_ms: int) -> None:
        """Rate-limited and refused attempts are not the job's fault: later, no attempt counted. Others are
        retried while the job's attempts and deadline allow (`decide_retry`)."""
        if failure.verdict is not None:
            return
        error = failure.error
        if isinstance(error, RateLimitedError | JobRefusedError):
            failure.verdict, failure.delay_ms = Verdict.PUT_OFF, error.retry_after_ms
            return
        info = job.ctx.job
        decision = decide_retry(
            error,
            attempts_made=info.attempt,
            max_attempts=info.max_attempts,
            backoff=job.opts.get("backoff"),
            deadline_ms=job.opts.get("deadline"),
            now_ms=now_ms,
        )
        failure.verdict = Verdict.RETRY if decision.retry else Verdict.FAIL
        failure.delay_ms = decision.delay_ms


def _overrides(policy: Policy, method: str) -> bool:
    return getattr(type(policy), method) is not getattr(Policy, method)


class Policies:
    """A runner's policies, in order."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.policies = tuple(policies)
        # The policies that act before an attempt: the attempt awaits each in turn.
        self.before: tuple[Callable[[ActiveJob, int], Awaitable[None]], ...] = tuple(
            policy.before_attempt for policy in self.policies if _overrides(policy, "before_attempt")
        )
        self._after = tuple(policy.after_failure for policy in self.policies if _overrides(policy, "after_failure"))

    @classmethod
    def standard(cls, client: Redis, keys: ConveyorKeys, group_limits: Mapping[str, RateLimit]) -> Policies:
        """The policies every runner applies (see the module docstring)."""
        groups = [GroupRateLimit(client, keys, group_limits)] if group_limits else []
        return cls([*groups, DeadlinePolicy(), RetryPolicy()])

    def judge(self, job: ActiveJob, error: BaseException, now_ms: int) -> Failure:
        """Judge a failed attempt; a failure no policy decided fails for good."""
        failure = Failure(error)
        for judge in self._after:
            judge(failure, job, now_ms)
        if failure.verdict is None:
            failure.verdict = Verdict.FAIL
        return failure
