"""One attempt of one job held by this worker: run it, then record the outcome in a single script call.

Recording a completion or final failure also fetches the queue's next job in the same call (BullMQ's
fetch-next), so a busy worker makes one round trip per job instead of two.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import ResponseError

from conveyor.queue.job import HISTORY_FIELD, QUEUED_AT_FIELD, AttemptRecord, numbered, parse_history
from conveyor.queue.options import RATE_KEY_OPTION, keep_jobs
from conveyor.redis.scripts import FetchedJob
from conveyor.worker.context import JobContext, JobInfo
from conveyor.worker.errors import (
    DeadlineExceededError,
    JobCancelledError,
    JobRefusedError,
    MalformedJobError,
    NonRetryableError,
    RateLimitedError,
    UnknownJobTypeError,
)
from conveyor.worker.execution import attempt_budget_s, run_attempt
from conveyor.worker.fetched import CheckedJob, check_fields, repairs, taken_despite
from conveyor.worker.hooks import Outcome
from conveyor.worker.limits import group_delay_ms
from conveyor.worker.redact import redact_secrets
from conveyor.worker.retry import decide_retry
from conveyor.worker.schedule_runs import SCHEDULER_FIELD, run_taken

if TYPE_CHECKING:
    from conveyor.worker.runner import QueueRunner

log = logging.getLogger(__name__)

STACKTRACE_LIMIT = 10


@dataclass
class ActiveJob:
    """A job this process holds the lock of."""

    job_id: str
    token: str
    fields: dict[str, str]
    opts: dict[str, Any]
    ctx: JobContext
    checked: CheckedJob
    task: asyncio.Task[Any] | None = None  # the slot task running it; None while prefetched
    handed_back: bool = False
    finishing: bool = False  # the handler has returned; its outcome is being recorded
    passed_slot: bool = False  # its slot went to a prefetched job while this one was being recorded
    lock_since: float = 0.0  # monotonic time no later than when its lock was last set for a full lock duration

    @classmethod
    def from_fetched(cls, fetched: FetchedJob, token: str, runner: QueueRunner) -> ActiveJob:
        """Wrap a job just moved to active (its hash came back with the fetch); `task` is set when it starts.
        Never raises: a malformed hash is noted in `checked.problem`, and the job fails when it starts."""
        assert fetched.job_id is not None
        checked = check_fields(fetched.fields, fetched.error)
        info = JobInfo(
            id=fetched.job_id,
            queue=runner.queue.name,
            type=checked.name,
            attempt=checked.attempts_made + 1,
            max_attempts=checked.max_attempts,
            worker=runner.config.worker_name,
        )
        ctx = JobContext(info, runner.scripts, asyncio.get_running_loop())
        return cls(fetched.job_id, token, fetched.fields, checked.opts, ctx, checked)

    @property
    def log_fields(self) -> dict[str, Any]:
        """`extra=` fields naming this job, for lines about it logged outside its attempt."""
        info = self.ctx.job
        return {"job_id": info.id, "queue": info.queue, "job_type": info.type, "attempt": info.attempt}

    def wait_s(self, now_ms: int) -> float:
        """Seconds from due time to start. Due time: when a retry became due, else creation plus the requested
        delay (BullMQ resets the hash's `delay` field on promotion, so the original comes from the options)."""
        fields = self.fields
        try:
            queued = int(fields.get(QUEUED_AT_FIELD) or 0) or int(fields.get("timestamp") or 0) + int(
                self.opts.get("delay") or 0
            )
            return max(0.0, (int(fields.get("processedOn") or now_ms) - queued) / 1000)
        except ValueError:  # a malformed hash: the job fails as such when it starts
            return 0.0


async def execute(runner: QueueRunner, job: ActiveJob) -> tuple[Any, BaseException | None]:
    """Run the job's handler once; returns (result, None) or (None, why it failed)."""
    info = job.ctx.job
    handler = runner.lookup(info.queue, info.type)
    try:
        if SCHEDULER_FIELD in job.fields and not await run_taken(
            runner.queue, job.job_id, job.fields, job.opts, runner.now_ms()
        ):
            return None, None  # a missed run of a schedule that skips missed runs
        if job.checked.problem is not None:
            raise _malformed(runner, job, job.checked.problem)
        if job.ctx.cancel_requested:
            raise JobCancelledError("job was cancelled before it started")  # while prefetched
        if job.fields.get("defa"):
            raise NonRetryableError(job.fields["defa"])  # stalled too often: BullMQ's deferred failure
        if handler is None:
            raise await _no_handler(runner, job)
        await _check_group_limit(runner, job)
        budget, is_deadline = attempt_budget_s(job.opts.get("timeout"), job.opts.get("deadline"), runner.now_ms())
        result = await run_attempt(
            handler, job.checked.data, job.ctx, runner.executor, budget_s=budget, limit_is_deadline=is_deadline,
            batcher=runner.batcher(handler),
        )  # fmt: skip
        json.dumps(result)  # a result that is not JSON fails the attempt here, not in Redis
        return result, None
    except Exception as exc:
        return None, exc


async def _no_handler(runner: QueueRunner, job: ActiveJob) -> Exception:
    """Why a job of a type this worker has no handler for does not run here (see `conveyor.worker.routing`)."""
    info = job.ctx.job
    if runner.routing is None:  # a runner outside a worker: no one to leave the job to
        return UnknownJobTypeError(f"no handler for job type {info.type!r} on queue {info.queue!r}")
    try:
        return await runner.routing.refuse(info.queue, info.type, job.fields, runner.now_ms())
    except UnknownJobTypeError as exc:
        return exc


def _malformed(runner: QueueRunner, job: ActiveJob, problem: str) -> MalformedJobError:
    log.error(
        "job %s of queue %s is malformed and fails without running: %s",
        job.job_id, runner.queue.name, problem, extra=job.log_fields,
    )  # fmt: skip
    return MalformedJobError(
        f"malformed job hash: {problem}. It was failed without running; fix the producer that wrote it "
        "(Conveyor and BullMQ write JSON `data` and `opts` and integer counters), then add the job again."
    )


async def _check_group_limit(runner: QueueRunner, job: ActiveJob) -> None:
    group = job.opts.get(RATE_KEY_OPTION)
    limit = runner.config.group_limits.get(group) if group else None
    if (
        group
        and limit
        and (wait := await group_delay_ms(runner.queue.client, runner.queue.conveyor_keys, group, limit))
    ):
        raise RateLimitedError(wait, f"rate-limit group {group!r} is full")


async def record(
    runner: QueueRunner, job: ActiveJob, result: Any, error: BaseException | None, fetch_next: bool
) -> tuple[Outcome, FetchedJob | None]:
    """Store the attempt's outcome (`completed`, `retried`, `failed`, or put off without counting an attempt:
    `rate-limited`, `refused`); returns it and, when asked, the next job already moved to active under the same
    token."""
    if error is None:
        value = json.dumps(result, separators=(",", ":"))
        keep = keep_jobs(job.opts.get("removeOnComplete"))
        return Outcome.COMPLETED, await _finished(runner, job, "completed", value, keep, fetch_next)
    now = runner.now_ms()
    error = _within_deadline(error, job.opts.get("deadline"), now)
    if isinstance(error, RateLimitedError | JobRefusedError):  # not the job's fault: later, no attempt counted
        return await _put_off(runner, job, error, now), None
    info = job.ctx.job
    decision = decide_retry(
        error,
        attempts_made=info.attempt,
        max_attempts=info.max_attempts,
        backoff=job.opts.get("backoff"),
        deadline_ms=job.opts.get("deadline"),
        now_ms=now,
    )
    updates = failure_fields(job, error, runner.config.worker_name, now)
    if not decision.retry:
        reason = updates.pop("failedReason")
        keep = keep_jobs(job.opts.get("removeOnFail"))
        return Outcome.FAILED, await _finished(runner, job, "failed", reason, keep, fetch_next, updates)
    updates[QUEUED_AT_FIELD] = str(now + decision.delay_ms)
    if decision.delay_ms > 0:
        await runner.scripts.move_to_delayed(
            job_id=job.job_id, token=job.token, timestamp=now, delay_ms=decision.delay_ms, fields=updates
        )
    else:
        await runner.scripts.retry_job(job_id=job.job_id, token=job.token, timestamp=now, fields=updates)
    return Outcome.RETRIED, None


def _within_deadline(error: BaseException, deadline_ms: Any, now_ms: int) -> BaseException:
    """A rate-limit wait that would end after the job's deadline is the deadline's failure now instead: the
    job could not run again in time, and waiting without counting attempts must not outlast it."""
    if not isinstance(error, RateLimitedError) or not isinstance(deadline_ms, int | float):
        return error
    if now_ms + error.retry_after_ms <= deadline_ms:
        return error
    exceeded = DeadlineExceededError(f"{error}, which is past the job's deadline")
    exceeded.__cause__ = error
    return exceeded


async def _put_off(runner: QueueRunner, job: ActiveJob, error: RateLimitedError | JobRefusedError, now: int) -> Outcome:
    """Send the job back to delayed for `error.retry_after_ms` without counting an attempt; returns the outcome:
    `rate-limited`, or `refused` (this worker has no handler for its type)."""
    if isinstance(error, JobRefusedError):
        # Its wait for a worker with the handler counts as waiting (no `cqat`): the wait-time metric shows it.
        fields, outcome = error.fields, Outcome.REFUSED
    else:
        fields, outcome = {QUEUED_AT_FIELD: str(now + error.retry_after_ms)}, Outcome.RATE_LIMITED
    await runner.scripts.move_to_delayed(
        job_id=job.job_id, token=job.token, timestamp=now, delay_ms=error.retry_after_ms, fields=fields,
        count_attempt=False,
    )  # fmt: skip
    return outcome


async def _finished(
    runner: QueueRunner,
    job: ActiveJob,
    target: str,
    value: str,
    keep: dict[str, int],
    fetch_next: bool,
    fields: dict[str, str] | None = None,
) -> FetchedJob | None:
    try:
        fetched = await runner.scripts.move_to_finished(
            job_id=job.job_id,
            token=job.token,
            target=target,
            value=value,
            timestamp=runner.now_ms(),
            keep=keep,
            attempts=job.ctx.job.max_attempts,
            fetch_next=fetch_next,
            lock_ms=runner.config.lock_ms,
            worker=runner.config.worker_name,
            fields=fields,
        )
    except ResponseError as exc:
        if not fetch_next:
            raise
        # The script fails on the next job's hash only after finishing this one: fail that one as malformed.
        fetched = await taken_despite(runner.scripts, job.token, exc, besides=job.job_id)
    if not fetched.replicated:  # durable mode: the outcome stands on the master; nothing to undo, only to say
        wait = runner.scripts.replica_wait
        log.warning(
            "job %s of %s %s on the master, but not acknowledged by %s: if the master fails now, the job is "
            "run again", job.job_id, runner.queue.name, target, wait.describe() if wait else "the replicas",
            extra={"job_id": job.job_id, "queue": runner.queue.name},
        )  # fmt: skip
    return fetched if fetched.job_id else None


def failure_fields(job: ActiveJob, error: BaseException, worker: str, now_ms: int) -> dict[str, str]:
    """The hash fields a failed attempt updates: BullMQ's `failedReason` and `stacktrace` (for Bull Board and
    Node tools) and Conveyor's retry history."""
    reason = redact_secrets(f"{type(error).__name__}: {error}")
    stack = redact_secrets("".join(traceback.format_exception(error)))
    entry = AttemptRecord(
        attempt=job.ctx.job.attempt,
        error=reason,
        stacktrace=stack,
        failed_at=datetime.fromtimestamp(now_ms / 1000, UTC),
        worker=worker,
    )
    history = numbered([*parse_history(job.fields.get(HISTORY_FIELD)), entry])
    stacks = [*_stacktraces(job.fields.get("stacktrace")), stack][-STACKTRACE_LIMIT:]
    return {
        "failedReason": reason,
        "stacktrace": json.dumps(stacks),
        HISTORY_FIELD: json.dumps([item.to_json() for item in history]),
        **repairs(job.fields),  # counters BullMQ's scripts increment must be integers, or the script errors
    }


def _stacktraces(raw: str | None) -> list[Any]:
    try:
        stacks = json.loads(raw or "[]")
    except ValueError:
        return []
    return stacks if isinstance(stacks, list) else []
