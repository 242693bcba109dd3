"""A queue: add jobs, read them back, and manage the queue (pause, resume, clear, retry, cancel)."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.config import QueueSettings, RateLimit
from conveyor.config.settings import QUEUE_NAME
from conveyor.queue.errors import (
    EnqueueNotReplicatedError,
    EnqueueUnconfirmedError,
    InvalidPayloadError,
    InvalidQueueNameError,
    JobNotFoundError,
    JobStateError,
    PayloadTooLargeError,
    QueueBusyError,
)
from conveyor.queue.hooks import Enqueue, ProducerHooks
from conveyor.queue.job import Job, JobState, new_job_id, shown_state
from conveyor.queue.layout import check_layout, recorded_version
from conveyor.queue.limits import QueueLimits, disagreements
from conveyor.queue.options import DEFAULT_OPTIONS, JobOptions, bullmq_options
from conveyor.redis.cluster import is_cluster
from conveyor.redis.connection import decoding, describe_client
from conveyor.redis.connection import redis_call as _redis_call
from conveyor.redis.keys import ConveyorKeys
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline, ReplicaWait
from conveyor.redis.script_errors import JobMissingError, JobNotInStateError, QueueHasActiveJobsError
from conveyor.redis.scripts import QueueScripts

COUNT_STATES = ("wait", "paused", "active", "completed", "failed", "delayed", "prioritized", "waiting-children")
# Where BullMQ keeps waiting jobs, in the order they run: its `wait` list (and the legacy `paused` list, moved
# back to `wait` on resume) before the `prioritized` set.
WAITING_AREAS = ("wait", "paused", "prioritized")
LIST_AREAS = ("wait", "paused", "active")
NEWEST_FIRST_AREAS = ("completed", "failed")
Clock = Callable[[], float]
WRITTEN_NOTHING = "nothing was written"
PARTLY_DONE = "it may be partly done; run it again"
SNAPSHOT_TRIES = 5  # reads of a job whose state keeps changing under get_job before it settles for the last
log = logging.getLogger(__name__)


# One encoder for every payload (json.dumps would build one per call): compact, UTF-8 as is, no NaN.
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_payload(data: Any, max_bytes: int) -> str:
    """The payload as compact JSON, or a clear error: never pickle, never more than `max_bytes`."""
    try:
        encoded = _JSON.encode(data)
        size = len(encoded.encode())
    except UnicodeEncodeError as exc:  # a lone surrogate (JSON's "\ud800", say): no UTF-8 text can carry it
        bad = exc.object[exc.start : exc.end]
        raise InvalidPayloadError(f"Payload must be valid Unicode text: {bad!r} is a lone surrogate") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidPayloadError(
            f"Payload must be JSON (objects, lists, strings, numbers, bools, null): {exc}"
        ) from exc
    if size > max_bytes:
        raise PayloadTooLargeError(
            f"Payload is {size} bytes; the limit is {max_bytes} (CONVEYOR_MAX_PAYLOAD_BYTES). "
            "Store large content elsewhere and pass a reference."
        )
    return encoded


JOB_TYPE_RULE = "a non-empty string of at most 256 characters (Unicode text: no lone surrogates)"


def valid_job_type(job_type: object) -> bool:
    """Whether `job_type` is a job type BullMQ can store as a job's name (see `JOB_TYPE_RULE`)."""
    if not isinstance(job_type, str) or not 0 < len(job_type) <= 256:
        return False
    try:
        job_type.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class NewJob:
    """One job for `Queue.add_bulk`."""

    type: str
    data: Any = None
    options: JobOptions = DEFAULT_OPTIONS


@dataclass(frozen=True)
class QueueCounts:
    """Jobs per state in one queue, and whether it is paused.

    `waiting` is every job waiting to run. `prioritized` and `paused_jobs` say how many of them have a
    priority (every job added with default options does) and how many the pause holds back (all of them while
    the queue is paused); the two parts may overlap.
    """

    waiting: int
    active: int
    completed: int
    failed: int
    delayed: int
    prioritized: int
    waiting_children: int
    paused: bool
    paused_jobs: int = 0

    @property
    def pending(self) -> int:
        """Jobs not yet started (waiting, delayed)."""
        return self.waiting + self.delayed


class Queue:
    """One BullMQ queue. Produce with `add`/`add_bulk`; inspect and manage with the other methods.

    With a `replica_wait` (durable mode, `CONVEYOR_REDIS_WAIT_REPLICAS`), an add returns only once that many
    replicas hold the job, and a worker's completion or failure of a job waits for them too.
    """

    def __init__(
        self,
        client: Redis,
        name: str,
        *,
        prefix: str = "bull",
        defaults: QueueSettings | None = None,
        max_payload_bytes: int = 1024 * 1024,
        clock: Clock = time.time,
        producer_hooks: ProducerHooks | None = None,
        replica_wait: ReplicaWait | None = None,
    ) -> None:
        if not QUEUE_NAME.match(name):
            raise InvalidQueueNameError(
                f"Invalid queue name {name!r}: use letters, digits, '.', '_' or '-' (no ':'), at most 128."
            )
        self.client = decoding(client)
        self.name = name
        # On a Redis Cluster, the queue's keys share its hash tag: one slot per queue (see `conveyor.redis.keys`).
        self.conveyor_keys = ConveyorKeys(prefix, tagged=is_cluster(self.client))
        self.keys = self.conveyor_keys.queue_keys(name)
        self.defaults = defaults or QueueSettings()
        self.max_payload_bytes = max_payload_bytes
        self.replica_wait = replica_wait
        self.scripts = QueueScripts(self.client, self.keys, replica_wait)
        self._clock = clock
        self.producer_hooks = producer_hooks or ProducerHooks()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- producing -------------------------------------------------------------------------------------

    @_redis_call(WRITTEN_NOTHING)  # Redis out of memory refuses the add script before it writes
    async def add(self, job_type: str, data: Any = None, options: JobOptions | None = None) -> str:
        """Enqueue one job and return its id. With `options.job_id`, adding an existing id is a no-op; without
        one, the id is made here before the first try, so a retried add (after a lost reply) adds nothing.

        Raises:
            InvalidPayloadError / PayloadTooLargeError: nothing was written.
            EnqueueUnconfirmedError (a RedisUnavailableError): Redis did not confirm the add; the job may or
                may not be in the queue, and adding it again with the same id (`job_ids`) is safe.
            EnqueueNotReplicatedError: durable mode only: the master added the job but too few replicas
                acknowledged it in time; adding it again with the same id is safe and waits again.
            RedisOutOfMemoryError: Redis is at its maxmemory and refused the add; nothing was written.
        """
        prepared = self._prepare(NewJob(job_type, data, options or DEFAULT_OPTIONS))
        try:
            if not self.producer_hooks.hooks:
                return str(await self.scripts.add_job(**prepared))
            enqueue = Enqueue(self.name, [prepared])
            with self.producer_hooks.around_add(enqueue):
                job_id = str(await self.scripts.add_job(**prepared))
                enqueue.ids.append(job_id)
            return job_id
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise self._unconfirmed(exc, [prepared]) from exc
        except NotReplicatedError as exc:
            raise self.not_replicated(exc, [str(prepared["job_id"])]) from exc

    @_redis_call(WRITTEN_NOTHING)  # out of memory part-way: the error says how many were written
    async def add_bulk(self, jobs: Sequence[NewJob]) -> list[str]:
        """Enqueue many jobs in one round trip; every payload is validated before anything is written. Ids are
        made before the first try, as in `add`; see there for the errors."""
        prepared = [self._prepare(job) for job in jobs]
        enqueue = Enqueue(self.name, prepared)
        write = ReplicatedPipeline(self.client, self.replica_wait) if self.replica_wait else None
        try:
            with self.producer_hooks.around_add(enqueue):
                pipe = write.pipe if write else self.client.pipeline(transaction=False)
                for args in prepared:
                    await self.scripts.add_job(**args, pipe=pipe)
                ids = [str(result) for result in await (write.execute() if write else pipe.execute())]
                enqueue.ids.extend(ids)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise self._unconfirmed(exc, prepared) from exc
        except NotReplicatedError as exc:
            raise self.not_replicated(exc, [str(args["job_id"]) for args in prepared]) from exc
        return ids

    def not_replicated(self, exc: NotReplicatedError, job_ids: list[str]) -> EnqueueNotReplicatedError:
        """The error that tells a producer its jobs were added on the master but not confirmed by replicas."""
        return EnqueueNotReplicatedError(describe_client(self.client), job_ids, exc.acknowledged, exc.wait.describe())

    def _unconfirmed(self, exc: Exception, prepared: list[dict[str, Any]]) -> EnqueueUnconfirmedError:
        ids = [str(args["job_id"]) for args in prepared]
        return EnqueueUnconfirmedError(describe_client(self.client), str(exc) or type(exc).__name__, ids)

    def _prepare(self, job: NewJob) -> dict[str, Any]:
        if not valid_job_type(job.type):
            raise InvalidPayloadError(f"Job type must be {JOB_TYPE_RULE}.")
        now = self._now_ms()
        return {
            "job_id": job.options.job_id or new_job_id(),  # fixed before the first try: retries add nothing
            "name": job.type,
            "data_json": encode_payload({} if job.data is None else job.data, self.max_payload_bytes),
            "opts": bullmq_options(job.options, self.defaults, now),
            "timestamp": now,
        }

    # --- reading ---------------------------------------------------------------------------------------

    @_redis_call()
    async def get_job(self, job_id: str) -> Job:
        """A snapshot of the job with its state, logs and retry history, or `JobNotFoundError`.

        The state is read before and after the hash, and the read repeated if it changed in between: a job
        that finished meanwhile never reads as completed without its result."""
        state = await self.scripts.get_state(job_id)
        for _ in range(SNAPSHOT_TRIES):
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.keys.job(job_id))
            pipe.lrange(self.keys.logs(job_id), 0, -1)
            fields, logs = await pipe.execute()
            before, state = state, await self.scripts.get_state(job_id)
            if state == before:
                break
        if not fields:
            raise JobNotFoundError(self.name, job_id)
        return Job.from_hash(self.name, job_id, fields, shown_state(state), logs)

    @_redis_call()
    async def state_of(self, job_id: str) -> JobState:
        """The state of a job (`unknown` if it does not exist); see `JobState` for what reads as waiting."""
        return shown_state(await self.scripts.get_state(job_id))

    async def _areas(self, state: JobState) -> tuple[str, ...]:
        """BullMQ's structures holding the jobs of `state` (see `JobState` for PRIORITIZED and PAUSED)."""
        if state is JobState.WAITING or (state is JobState.PAUSED and await self.is_paused()):
            return WAITING_AREAS
        if state is JobState.PAUSED:
            return ("paused",)  # the legacy paused list: jobs a resume has yet to move back
        if state is JobState.UNKNOWN:
            raise JobStateError(f"Cannot list jobs in state {state.value!r}.")
        return (state.value,)

    @_redis_call()
    async def count_of(self, state: JobState) -> int:
        """How many jobs `job_ids(state)` pages through."""
        return sum(await self.scripts.get_counts(await self._areas(state)))

    @_redis_call()
    async def job_ids(self, state: JobState, start: int = 0, count: int = 50) -> list[str]:
        """Ids of jobs in one state: in the order they will run for pending states (waiting ones before
        prioritized ones, as workers take them), newest first for finished ones."""
        areas = await self._areas(state)
        sizes = await self.scripts.get_counts(areas)
        ids: list[str] = []
        for area, size in zip(areas, sizes, strict=True):
            if len(ids) >= count:
                break
            if start >= size:
                start -= size
                continue
            ids += await self._range(area, start, count - len(ids))
            start = 0
        return ids

    async def _range(self, area: str, start: int, count: int) -> list[str]:
        end = start + count - 1
        key = self.keys.of(area)
        if area in LIST_AREAS:
            # BullMQ pushes new jobs on the left; the oldest (next to run) is at the right end.
            ids = await self.client.lrange(key, -end - 1, -start - 1)
            return [str(job_id) for job_id in reversed(ids)]
        ranged = await self.client.zrange(key, start, end, desc=area in NEWEST_FIRST_AREAS)
        return [str(job_id) for job_id in ranged]

    @_redis_call()
    async def jobs(self, state: JobState, start: int = 0, count: int = 50) -> list[Job]:
        """A page of jobs in one state (see `job_ids` for the order), without logs."""
        ids = await self.job_ids(state, start, count)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.job(job_id))
        rows = await pipe.execute()
        shown = shown_state(state.value)
        return [Job.from_hash(self.name, job_id, row, shown) for job_id, row in zip(ids, rows, strict=True) if row]

    @_redis_call()
    async def counts(self) -> QueueCounts:
        """Jobs per state and the paused flag; see `QueueCounts` for what counts as waiting."""
        values = dict(zip(COUNT_STATES, await self.scripts.get_counts(COUNT_STATES), strict=True))
        paused = await self.is_paused()
        waiting = sum(values[area] for area in WAITING_AREAS)
        return QueueCounts(
            waiting=waiting,
            active=values["active"],
            completed=values["completed"],
            failed=values["failed"],
            delayed=values["delayed"],
            prioritized=values["prioritized"],
            waiting_children=values["waiting-children"],
            paused=paused,
            paused_jobs=waiting if paused else values["paused"],
        )

    @_redis_call()
    async def is_paused(self) -> bool:
        """True while the queue is paused."""
        return bool(await self.client.hexists(self.keys.meta, "paused"))

    # --- managing --------------------------------------------------------------------------------------

    @_redis_call()
    async def apply_limits(self, rate_limit: RateLimit | None, global_concurrency: int | None) -> QueueLimits:
        """Write the queue-wide rate limit and concurrency that are given (configured); leave one that is None as
        Redis holds it (e.g. set from Node). BullMQ's scripts enforce them for every worker of the queue, Node
        ones included: they live in the queue's meta hash. Logs a warning for each given limit that replaces a
        different one. Returns the limits in force afterwards."""
        configured = QueueLimits(rate_limit, global_concurrency)
        in_force = await self.limits()
        for message in disagreements(self.name, configured, in_force):
            log.warning(message)
        fields = configured.meta_fields()
        if fields and configured.over(in_force) != in_force:
            await self.client.hset(self.keys.meta, mapping={name: value for name, value in fields.items()})
        return configured.over(in_force)

    async def limits(self) -> QueueLimits:
        """The queue-wide limits in force, whoever set them (this configuration, another one, Node)."""
        names = ("max", "duration", "concurrency")
        values = await self.client.hmget(self.keys.meta, list(names))
        return QueueLimits.from_meta({name: str(value) for name, value in zip(names, values, strict=True) if value})

    async def check_layout(self) -> None:
        """Refuse a queue last written by an unsupported Node bullmq release (see `conveyor.queue.layout`).

        Raises:
            UnsupportedLayoutError: e.g. a queue of bullmq 4.x.
        """
        check_layout(self.name, await recorded_version(self.client, self.keys))

    async def remove_limits(self, *, rate_limit: bool = False, global_concurrency: bool = False) -> None:
        """Delete the queue-wide rate limit and/or concurrency from Redis (as Node's `removeGlobalRateLimit`
        / `removeGlobalConcurrency` do); a configuration that sets them writes them again when it next starts."""
        fields = [*(("max", "duration") if rate_limit else ()), *(("concurrency",) if global_concurrency else ())]
        if fields:
            await self.client.hdel(self.keys.meta, *fields)

    @_redis_call()
    async def pause(self) -> None:
        """Stop every worker from starting jobs of this queue; active jobs finish."""
        await self.scripts.pause(True)

    @_redis_call()
    async def resume(self) -> None:
        """Let workers start jobs of this queue again."""
        await self.scripts.pause(False)

    @_redis_call(PARTLY_DONE)
    async def clear(self, *, force: bool = False) -> None:
        """Delete every job of the queue. Refuses while jobs are active unless `force` (their workers then
        lose them and drop their results). A paused queue stays paused."""
        was_paused = await self.is_paused()
        await self.pause()  # first, so no job starts between the check for active jobs and the deletion
        try:
            while await self.scripts.obliterate(1000, force=force) > 0:
                pass
        except QueueHasActiveJobsError as exc:
            if not was_paused:
                await self.resume()
            raise QueueBusyError(
                f"Queue {self.name!r} has active jobs; pause it and wait for them, or clear with force."
            ) from exc
        if was_paused:
            await self.pause()

    @_redis_call()
    async def retry(self, job_id: str) -> None:
        """Move a failed job back to waiting with fresh attempts."""
        try:
            await self.scripts.reprocess_job(job_id, "failed")
        except JobMissingError as exc:
            raise JobNotFoundError(self.name, job_id) from exc
        except JobNotInStateError as exc:
            raise JobStateError(f"Job {job_id!r} is not failed, so it cannot be retried.") from exc

    @_redis_call(PARTLY_DONE)
    async def retry_all_failed(self, batch: int = 500) -> int:
        """Retry every failed job; returns how many were moved back to waiting."""
        moved = 0
        while ids := await self.client.zrange(self.keys.failed, 0, batch - 1):
            for job_id in ids:
                await self.scripts.reprocess_job(str(job_id), "failed")
            moved += len(ids)
        return moved

    @_redis_call()
    async def promote(self, job_id: str) -> None:
        """Run a delayed job now."""
        try:
            await self.scripts.promote(job_id)
        except JobNotInStateError as exc:
            raise JobStateError(f"Job {job_id!r} is not delayed, so it cannot be promoted.") from exc

    @_redis_call(PARTLY_DONE)
    async def promote_delayed(self, limit: int = 10_000) -> int:
        """Run delayed jobs now (up to `limit`, soonest due first), each keeping its priority; returns how
        many were promoted. A job that stopped being delayed meanwhile is skipped."""
        promoted = 0
        while promoted < limit:
            ids = await self.client.zrange(self.keys.delayed, 0, min(500, limit - promoted) - 1)
            if not ids:
                break
            for job_id in ids:
                try:
                    await self.scripts.promote(str(job_id))
                except JobNotInStateError:
                    continue
                promoted += 1
        return promoted

    @_redis_call(PARTLY_DONE)
    async def clean(self, state: JobState, grace_ms: int, limit: int = 10_000) -> list[str]:
        """Delete up to `limit` completed or failed jobs that finished more than `grace_ms` ago (BullMQ's
        `clean`); returns their ids. Dead letters are kept (they are copies)."""
        if state not in (JobState.COMPLETED, JobState.FAILED):
            raise JobStateError(f"Only completed or failed jobs are cleaned, not {state.value} ones.")
        return await self.scripts.clean_jobs_in_set(state.value, self._now_ms() - grace_ms, limit)

    @_redis_call()
    async def remove(self, job_id: str) -> None:
        """Delete a job that is not active (cancel an active one instead)."""
        if not await self.client.exists(self.keys.job(job_id)):
            raise JobNotFoundError(self.name, job_id)
        if not await self.scripts.remove_job(job_id):
            raise JobStateError(f"Job {job_id!r} is active; cancel it instead of removing it.")

    @_redis_call()
    async def cancel(self, job_id: str) -> JobState:
        """Cancel a job: a pending one is removed; an active one is asked to stop and then fails as
        cancelled (no retries). Returns the state the job was in."""
        state = await self.state_of(job_id)
        if state is JobState.ACTIVE:
            # The flag first (it outlives a missed message), then the message; not pipelined: a cluster's
            # pipelines cannot carry a PUBLISH.
            await self.client.set(self.conveyor_keys.cancel_flag(self.name, job_id), uuid.uuid4().hex, ex=24 * 3600)
            await self.client.publish(self.conveyor_keys.cancel_channel, f"{self.name}:{job_id}")
        elif state in (JobState.COMPLETED, JobState.FAILED):
            raise JobStateError(f"Job {job_id!r} already {state.value}; nothing to cancel.")
        elif state is JobState.UNKNOWN:
            raise JobNotFoundError(self.name, job_id)
        else:
            await self.remove(job_id)
        return state
