"""Flows on BullMQ's data model: trees of jobs where a parent runs after its children, and sequential chains.

A tree is written in one MULTI: each parent with BullMQ's `addParentJob` (it waits in `waiting-children`), each
leaf as a normal job; every child names its parent, so the parent's `:dependencies` set holds its pending
children. The worker completes a job with `moveToFinished`, which in the same script call stores the child's
result in the parent's `:processed` hash and, when the last child is done, moves the parent to `wait` (in its own
queue: children may be in other queues). Handlers read their children's results with
`Flows.children_results(queue, job_id)`.

A chain `a -> b -> c` is the degenerate tree `c(b(a))`: `a` runs first, `b` when `a` completed, and so on; each
step reads the previous step's result with `Flows.previous_result`. Building chains on flows rather than on a
hook that enqueues the next step keeps them atomic and durable: the whole chain exists from the start (visible as
a tree), and progress is made by the same script call that completes a step, so no crash can lose a step between
two writes.

What a child's failure does to its parent is the child's `on_failure` policy, stored in the child's `parent`
field where `moveToFinished` reads it:

| policy | BullMQ flag | the parent |
|---|---|---|
| `fail` (default) | `fpof` | fails too (`child … failed`), and so on up the tree: the chain stops |
| `continue` | `cpof` | runs at once, its children's failures in `Flows.children` |
| `ignore` | `idof` | runs once its other children completed; the failure is recorded |
| `wait` | none | stays waiting until the child is retried and completes (BullMQ's default) |
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

from redis.asyncio import Redis

from conveyor.queue.errors import InvalidPayloadError, QueueError
from conveyor.queue.job import new_job_id
from conveyor.queue.options import JobOptions, bullmq_options
from conveyor.queue.queue import JOB_TYPE_RULE, Queue, encode_payload, valid_job_type
from conveyor.queue.source import QueueSource, namespace
from conveyor.queue.tenants import admit
from conveyor.redis.cluster import is_cluster
from conveyor.redis.connection import redis_call
from conveyor.redis.keys import ConveyorKeys
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline
from conveyor.redis.script_errors import raise_for_code
from conveyor.redis.scripts import ParentRef

MAX_FLOW_JOBS = 1000
Validate = Callable[[str, str, Any], Any]


class FailurePolicy(StrEnum):
    """What a child's failure (for good) does to its parent."""

    FAIL = "fail"
    CONTINUE = "continue"
    IGNORE = "ignore"
    WAIT = "wait"

    @property
    def flag(self) -> str | None:
        """BullMQ's flag in the child's `parent` field."""
        return {"fail": "fpof", "continue": "cpof", "ignore": "idof"}.get(self.value)


class FlowError(QueueError):
    """A flow that cannot be added as given (empty chain, too many jobs)."""


@dataclass(frozen=True)
class FlowJob:
    """One job of a flow: what it runs, its children (which run first), and what its failure does to its
    parent (`on_failure`, ignored on the root)."""

    queue: str
    type: str
    data: Any = None
    options: JobOptions = field(default_factory=JobOptions)
    children: Sequence[FlowJob] = ()
    on_failure: FailurePolicy = FailurePolicy.FAIL

    def walk(self) -> Iterator[FlowJob]:
        """This job and its descendants, parents before children."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class FlowNode:
    """An added flow: each job's queue and id, with its children."""

    queue: str
    job_id: str
    children: list[FlowNode] = field(default_factory=list)

    def ids(self) -> list[str]:
        """Every job id, parents before children."""
        return [self.job_id, *(job_id for child in self.children for job_id in child.ids())]


@dataclass(frozen=True)
class JobRef:
    """Where a job is: its queue and id."""

    queue: str
    job_id: str


@dataclass(frozen=True)
class ChildJob:
    """A child of a parent job and how far it got: `pending`, `completed` (with its result), or `failed`
    (with its reason)."""

    queue: str
    job_id: str
    status: str
    result: Any = None
    failed_reason: str | None = None


def chain(steps: Sequence[FlowJob]) -> FlowJob:
    """The flow that runs `steps` one after the other (each step's children are replaced by the previous step)."""
    if not steps:
        raise FlowError("A chain needs at least one step.")
    flow: FlowJob | None = None
    for step in steps:
        flow = FlowJob(step.queue, step.type, step.data, step.options, (flow,) if flow else (), step.on_failure)
    assert flow is not None
    return flow


@dataclass
class _Prepared:
    queue: Queue
    job_id: str
    name: str
    data_json: str
    opts: dict[str, Any]
    parent: ParentRef | None
    has_children: bool


class Flows:
    """Add flows and chains to a namespace's queues, and read how parents' children are doing."""

    def __init__(
        self,
        client: Redis,
        keys: ConveyorKeys,
        queue_for: Callable[[str], Queue],
        validate: Validate | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.queue_for = queue_for
        self.validate = validate
        self._clock = clock

    @classmethod
    def of(cls, source: QueueSource) -> Flows:
        """The flows of an app (or a tenant's view of it), checking payloads like `app.add`: `Flows.of(app)`."""
        client, keys = namespace(source)
        return cls(client, keys, source.queue, source.validate_payload)

    # --- adding -----------------------------------------------------------------------------------------

    @redis_call("nothing was written")
    async def add(self, flow: FlowJob) -> FlowNode:
        """Add a tree atomically (all of it or, when a payload is refused, none of it); returns its ids.

        Raises:
            UnknownQueueError / InvalidPayloadError / PayloadTooLargeError / QuotaExceededError: nothing was
                written.
            FlowError: more than MAX_FLOW_JOBS jobs, or, on a Redis Cluster, jobs in more than one queue.
            RedisUnavailableError / RedisOutOfMemoryError: Redis cannot be reached or is full; nothing was
                written.
            EnqueueNotReplicatedError: durable mode only: the master added the whole tree, but too few replicas
                acknowledged it in time (adding it again with the same ids adds nothing and waits again).
        """
        if sum(1 for _ in flow.walk()) > MAX_FLOW_JOBS:
            raise FlowError(f"A flow may hold at most {MAX_FLOW_JOBS} jobs; split it into several flows.")
        self._check_one_slot(flow)
        for name, count in Counter(job.queue for job in flow.walk()).items():
            await admit(self.queue_for(name), count)  # a tenant's quotas (and its payload limit)
        prepared: list[_Prepared] = []
        tree = self._prepare(flow, None, None, prepared, self._now_ms())
        wait = prepared[0].queue.replica_wait  # durable mode: the whole tree waits for the replicas once
        write = ReplicatedPipeline(self.client, wait, atomic=True) if wait else None
        pipe = write.pipe if write else self.client.pipeline(transaction=True)
        for job in prepared:
            await job.queue.scripts.add_job(
                job_id=job.job_id,
                name=job.name,
                data_json=job.data_json,
                opts=job.opts,
                timestamp=int(job.opts["timestamp"]),
                parent=job.parent,
                has_children=job.has_children,
                pipe=pipe,
            )
        try:
            results = await (write.execute() if write else pipe.execute())
        except NotReplicatedError as exc:
            raise prepared[0].queue.not_replicated(exc, [job.job_id for job in prepared]) from exc
        for job, result in zip(prepared, results, strict=True):
            raise_for_code(result, job_id=job.job_id, command="addFlow")
        return tree

    def _check_one_slot(self, flow: FlowJob) -> None:
        """On a cluster, a flow's jobs must share one queue: BullMQ's scripts update a parent from its child's
        script, which may touch only keys of one slot, and each queue has a slot of its own."""
        queues = sorted({job.queue for job in flow.walk()})
        if len(queues) > 1 and is_cluster(self.client):
            raise FlowError(
                f"On a Redis Cluster a flow must keep all its jobs in one queue (each queue lives in its own hash "
                f"slot, and a child finishing updates its parent atomically); this one spans {', '.join(queues)}. "
                "Put the flow's jobs in one queue, or link the steps yourself (a handler that adds the next job)."
            )

    async def add_chain(self, steps: Sequence[FlowJob]) -> list[str]:
        """Add a chain (`steps[0]` runs first, each next one after the previous completed, reading its
        result); returns the job ids in the order they run."""
        return list(reversed((await self.add(chain(steps))).ids()))

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _prepare(
        self, job: FlowJob, parent: ParentRef | None, policy: FailurePolicy | None, out: list[_Prepared], now: int
    ) -> FlowNode:
        queue = self.queue_for(job.queue)
        data = self.validate(job.queue, job.type, job.data) if self.validate else job.data
        if not valid_job_type(job.type):
            raise InvalidPayloadError(f"Job type must be {JOB_TYPE_RULE}.")
        job_id = job.options.job_id or new_job_id()
        opts = bullmq_options(job.options, queue.defaults, now)
        opts["jobId"] = job_id
        if parent is not None and policy is not None and policy.flag:
            opts[policy.flag] = True  # as BullMQ stores it; the script reads it from the `parent` field
        data_json = encode_payload({} if data is None else data, queue.max_payload_bytes)
        out.append(_Prepared(queue, job_id, job.type, data_json, opts, parent, bool(job.children)))
        node = FlowNode(job.queue, job_id)
        for child in job.children:
            ref = ParentRef(queue.keys, job_id, child.on_failure.flag)
            node.children.append(self._prepare(child, ref, child.on_failure, out, now))
        return node

    # --- reading ----------------------------------------------------------------------------------------

    def _ref(self, key: str) -> JobRef | None:
        found = self.keys.job_of_key(key)
        return JobRef(*found) if found else None

    async def parent(self, queue: str, job_id: str) -> JobRef | None:
        """The parent of a job, if it is a child in a flow (and the job still exists)."""
        key = await self.client.hget(self.queue_for(queue).keys.job(job_id), "parentKey")
        return self._ref(str(key)) if key else None

    async def children(self, queue: str, job_id: str) -> list[ChildJob]:
        """Every child of a parent job: pending, completed (with results) and failed ones."""
        keys = self.queue_for(queue).keys
        pipe = self.client.pipeline(transaction=False)
        pipe.smembers(keys.dependencies(job_id))
        pipe.hgetall(keys.processed(job_id))
        pipe.hgetall(keys.failed_children(job_id))
        pipe.zrange(keys.unsuccessful(job_id), 0, -1)
        pending, processed, failed, unsuccessful = await pipe.execute()
        found: list[ChildJob] = []
        for key in sorted(pending):
            found.extend(self._child(key, "pending"))
        for key, value in sorted(processed.items()):
            found.extend(self._child(key, "completed", result=_json(value)))
        for key, reason in sorted(failed.items()):
            found.extend(self._child(key, "failed", reason=reason))
        for key in unsuccessful:
            found.extend(self._child(key, "failed", reason=await self._reason(key)))
        return found

    def _child(self, key: str, status: str, result: Any = None, reason: str | None = None) -> list[ChildJob]:
        ref = self._ref(str(key))
        return [ChildJob(ref.queue, ref.job_id, status, result, reason)] if ref else []

    async def _reason(self, key: str) -> str | None:
        reason = await self.client.hget(key, "failedReason")
        return str(reason) if reason is not None else None

    async def children_results(self, queue: str, job_id: str) -> dict[str, Any]:
        """The results of a parent's completed children, by child job id (what a parent handler reads)."""
        raw = cast("dict[str, str]", await self.client.hgetall(self.queue_for(queue).keys.processed(job_id)))
        results: dict[str, Any] = {}
        for key, value in raw.items():
            ref = self._ref(key)
            if ref is not None:
                results[ref.job_id] = _json(value)
        return results

    async def previous_result(self, queue: str, job_id: str) -> Any:
        """In a chain, the result of the step before this one (None for the first step, or when the previous
        step failed under `continue`/`ignore`)."""
        results = await self.children_results(queue, job_id)
        return next(iter(results.values())) if len(results) == 1 else None


def _json(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value
