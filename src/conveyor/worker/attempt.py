"""One attempt of one job held by this worker: run it, then record the outcome in a single script call.

Recording a completion or final failure also fetches the queue's next job in the same call (BullMQ's
fetch-next), so a busy worker makes one round trip per job instead of two.

An attempt sees the runner that holds its job only through `AttemptEnv`: what it reads (the queue, the handlers,
the executor, the clock) and the policies that decide around it (`conveyor.worker.policies`).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from conveyor.queue.job import HISTORY_FIELD, QUEUED_AT_FIELD, AttemptRecord, numbered, parse_history
from conveyor.queue.options import keep_jobs
from conveyor.queue.queue import Queue
from conveyor.redis.scripts import FetchedJob, QueueScripts
from conveyor.worker.active import ActiveJob
from conveyor.worker.errors import (
    JobCancelledError,
    JobRefusedError,
    MalformedJobError,
    NonRetryableError,
    UnknownJobTypeError,
)
from conveyor.worker.execution import run_attempt
from conveyor.worker.fetched import repairs, taken_despite
from conveyor.worker.handler import Batchers, HandlerLookup
from conveyor.worker.hooks import Outcome
from conveyor.worker.policies import Failure, Policies, Verdict
from conveyor.worker.redact import redact_secrets
from conveyor.worker.routing import JobTypeRouting
from conveyor.worker.schedule_runs import SCHEDULER_FIELD, run_taken

__all__ = ["ActiveJob", "AttemptEnv", "execute", "failure_fields", "record"]

log = logging.getLogger(__name__)

NO_RESULT = "null"  # the stored result of an attempt whose handler returned nothing (or did not run)

STACKTRACE_LIMIT = 10


@dataclass(frozen=True, slots=True)
class AttemptEnv:
    """What an attempt needs of the runner that holds its job."""

    queue: Queue
    scripts: QueueScripts
    lookup: HandlerLookup
    executor: Executor
    worker_name: str
    lock_ms: int
    policies: Policies
    batchers: Batchers
    routing: JobTypeRouting | None  # for jobs of a type without a handler here; None: they fail at once
    now_ms: Callable[[], int]  # the runner's clock in milliseconds


async def execute(env: AttemptEnv, job: ActiveJob) -> tuple[str, BaseException | None]:
    """Run the job's handler once; returns (its result as JSON, None) or ("null", why it failed). A result that
    is not JSON (or holds NaN or infinity, which JSON readers such as Node's refuse) fails the attempt here."""
    info = job.ctx.job
    handler = env.lookup(info.queue, info.type)
    try:
        if SCHEDULER_FIELD in job.fields and not await run_taken(
            env.queue, job.job_id, job.fields, job.opts, env.now_ms()
        ):
            return NO_RESULT, None  # a missed run of a schedule that skips missed runs
        if (unfit := _unfit(env, job)) is not None:
            raise unfit
        if handler is None:
            raise await _no_handler(env, job)
        now = env.now_ms()
        for before_attempt in env.policies.before:
            await before_attempt(job, now)
        budget, is_deadline = job.time_limit
        result = await run_attempt(
            handler, job.checked.data, job.ctx, env.executor, budget_s=budget, limit_is_deadline=is_deadline,
            batcher=env.batchers.of(handler),
        )  # fmt: skip
        return json.dumps(result, separators=(",", ":"), allow_nan=False), None
    except Exception as exc:
        return NO_RESULT, exc


def _unfit(env: AttemptEnv, job: ActiveJob) -> Exception | None:
    """Why the job fails without its handler running, if it does."""
    if job.checked.problem is not None:
        return _malformed(env, job, job.checked.problem)
    if job.ctx.cancel_requested:
        return JobCancelledError("job was cancelled before it started")  # while prefetched
    if job.fields.get("defa"):
        return NonRetryableError(job.fields["defa"])  # stalled too often: BullMQ's deferred failure
    return None


async def _no_handler(env: AttemptEnv, job: ActiveJob) -> Exception:
    """Why a job of a type this worker has no handler for does not run here (see `conveyor.worker.routing`)."""
    info = job.ctx.job
    if env.routing is None:  # a runner outside a worker: no one to leave the job to
        return UnknownJobTypeError(f"no handler for job type {info.type!r} on queue {info.queue!r}")
    try:
        return await env.routing.refuse(info.queue, info.type, job.fields, env.now_ms())
    except UnknownJobTypeError as exc:
        return exc


def _malformed(env: AttemptEnv, job: ActiveJob, problem: str) -> MalformedJobError:
    log.error(
        "job %s of queue %s is malformed and fails without running: %s",
        job.job_id, env.queue.name, problem, extra=job.log_fields,
    )  # fmt: skip
    return MalformedJobError(
        f"malformed job hash: {problem}. It was failed without running; fix the producer that wrote it "
        "(Conveyor and BullMQ write JSON `data` and `opts` and integer counters), then add the job again."
    )


async def record(
    env: AttemptEnv, job: ActiveJob, result: str, error: BaseException | None, fetch_next: bool
) -> tuple[Outcome, FetchedJob | None]:
    """Store the attempt's outcome (`completed`, `retried`, `failed`, or put off without counting an attempt:
    `rate-limited`, `refused`); returns it and, when asked, the next job already moved to active under the same
    token. `result` is the handler's result as JSON (see `execute`)."""
    if error is None:
        keep = keep_jobs(job.opts.get("removeOnComplete"))
        return Outcome.COMPLETED, await _finished(env, job, Outcome.COMPLETED, result, keep, fetch_next)
    now = env.now_ms()
    failure = env.policies.judge(job, error, now)
    if failure.verdict is Verdict.PUT_OFF:
        return await _put_off(env, job, failure, now), None
    updates = failure_fields(job, failure.error, env.worker_name, now)
    if failure.verdict is Verdict.FAIL:
        reason = updates.pop("failedReason")
        keep = keep_jobs(job.opts.get("removeOnFail"))
        return Outcome.FAILED, await _finished(env, job, Outcome.FAILED, reason, keep, fetch_next, updates)
    updates[QUEUED_AT_FIELD] = str(now + failure.delay_ms)
    if failure.delay_ms > 0:
        await env.scripts.move_to_delayed(
            job_id=job.job_id, token=job.token, timestamp=now, delay_ms=failure.delay_ms, fields=updates
        )
    else:
        await env.scripts.retry_job(job_id=job.job_id, token=job.token, timestamp=now, fields=updates)
    return Outcome.RETRIED, None


async def _put_off(env: AttemptEnv, job: ActiveJob, failure: Failure, now: int) -> Outcome:
    """Send the job back to delayed for `failure.delay_ms` without counting an attempt; returns the outcome:
    `rate-limited`, or `refused` (this worker has no handler for its type)."""
    if isinstance(failure.error, JobRefusedError):
        # Its wait for a worker with the handler counts as waiting (no `cqat`): the wait-time metric shows it.
        fields, outcome = failure.error.fields, Outcome.REFUSED
    else:
        fields, outcome = {QUEUED_AT_FIELD: str(now + failure.delay_ms)}, Outcome.RATE_LIMITED
    await env.scripts.move_to_delayed(
        job_id=job.job_id, token=job.token, timestamp=now, delay_ms=failure.delay_ms, fields=fields,
        count_attempt=False,
    )  # fmt: skip
    return outcome


async def _finished(
    env: AttemptEnv,
    job: ActiveJob,
    target: Outcome,
    value: str,
    keep: dict[str, int],
    fetch_next: bool,
    fields: dict[str, str] | None = None,
) -> FetchedJob | None:
    try:
        fetched = await env.scripts.move_to_finished(
            job_id=job.job_id,
            token=job.token,
            target=target.value,
            value=value,
            timestamp=env.now_ms(),
            keep=keep,
            attempts=job.ctx.job.max_attempts,
            fetch_next=fetch_next,
            lock_ms=env.lock_ms,
            worker=env.worker_name,
            fields=fields,
        )
    except ResponseError as exc:
        if not fetch_next:
            raise
        # The script fails on the next job's hash only after finishing this one: fail that one as malformed.
        fetched = await taken_despite(env.scripts, job.token, exc, besides=job.job_id)
    if not fetched.replicated:  # durable mode: the outcome stands on the master; nothing to undo, only to say
        wait = env.scripts.replica_wait
        log.warning(
            "job %s of %s %s on the master, but not acknowledged by %s: if the master fails now, the job is "
            "run again", job.job_id, env.queue.name, target.value, wait.describe() if wait else "the replicas",
            extra={"job_id": job.job_id, "queue": env.queue.name},
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
