"""BullMQ's Lua scripts, loaded from the pinned `bullmq` package and called with typed arguments.

Each method names the script it runs; the script's header (in the bullmq package) is the contract for KEYS,
ARGV and return codes. Negative return codes become `ScriptError` subclasses, never magic numbers at call
sites. Every state change of an active job passes the worker's lock token, which the script checks (fencing).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache, cached_property
from importlib.util import find_spec
from pathlib import Path
from typing import Any, cast

import msgpack
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from conveyor.redis.cluster import is_cluster, load_script_for
from conveyor.redis.coalescing import ScriptCoalescer
from conveyor.redis.fetch_lease import with_lease_check
from conveyor.redis.keys import QueueKeys
from conveyor.redis.lane import DirectLane, Lease, lane_for
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline, ReplicaWait
from conveyor.redis.script_errors import raise_for_code

SCRIPT_FILES = {
    "addStandardJob": "addStandardJob-9.lua",
    "addDelayedJob": "addDelayedJob-6.lua",
    "addPrioritizedJob": "addPrioritizedJob-9.lua",
    "addParentJob": "addParentJob-6.lua",
    "moveToActive": "moveToActive-11.lua",
    "moveToFinished": "moveToFinished-14.lua",
    "moveToDelayed": "moveToDelayed-11.lua",
    "retryJob": "retryJob-11.lua",
    "extendLocks": "extendLocks-1.lua",
    "moveStalledJobsToWait": "moveStalledJobsToWait-9.lua",
    "updateProgress": "updateProgress-3.lua",
    "addLog": "addLog-2.lua",
    "getCounts": "getCounts-1.lua",
    "pause": "pause-7.lua",
    "obliterate": "obliterate-2.lua",
    "drain": "drain-5.lua",
    "promote": "promote-9.lua",
    "removeJob": "removeJob-2.lua",
    "getStateV2": "getStateV2-8.lua",
    "reprocessJob": "reprocessJob-9.lua",
    "moveJobsToWait": "moveJobsToWait-8.lua",
    "cleanJobsInSet": "cleanJobsInSet-3.lua",
    "moveJobFromActiveToWait": "moveJobFromActiveToWait-9.lua",
    "addJobScheduler": "addJobScheduler-11.lua",
    "updateJobScheduler": "updateJobScheduler-12.lua",
    "removeJobScheduler": "removeJobScheduler-3.lua",
}


LEASED_FETCH = "leasedMoveToActive"  # Conveyor's: BullMQ's moveToActive behind a fetch lease (see `fetch_lease`)


@cache
def script_source(name: str) -> str:
    """The Lua source of a BullMQ script as shipped by the pinned `bullmq` package (or `LEASED_FETCH`, made of
    BullMQ's `moveToActive`)."""
    if name == LEASED_FETCH:
        return with_lease_check(script_source("moveToActive"))
    return (_bullmq_commands() / SCRIPT_FILES[name]).read_text()


@cache
def _bullmq_commands() -> Path:
    # The package is found, not imported: importing `bullmq` loads its whole Python client (Queue, Worker,
    # croniter, ...), which Conveyor never uses, into every process; only its Lua scripts are read.
    spec = find_spec("bullmq")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the `bullmq` package (a dependency of Conveyor, for its Lua scripts) is missing")
    return Path(next(iter(spec.submodule_search_locations))) / "commands"


_packers = threading.local()  # one msgpack Packer per thread, reused (msgpack.packb builds one per call)


def pack(value: Any) -> bytes:
    """`value` in MessagePack, as BullMQ's scripts unpack their packed arguments."""
    try:
        packer: msgpack.Packer = _packers.packer
    except AttributeError:
        packer = _packers.packer = msgpack.Packer(use_bin_type=True)
    packed: bytes = packer.pack(value)  # the Packer starts afresh after each call, and after an error
    return packed


def _flat(fields: dict[str, str]) -> bytes:
    return pack([item for pair in fields.items() for item in pair])


@dataclass(frozen=True, slots=True)
class FetchedJob:
    """What `moveToActive` (or a finishing script with fetch-next) hands back."""

    job_id: str | None
    fields: dict[str, str]
    rate_limit_delay_ms: int
    next_delayed_ms: int
    error: str | None = None  # the script failed after taking the job (see `QueueScripts.taken_by`)
    replicated: bool = True  # False: a finishing move asked to WAIT for replicas, and too few acknowledged it


def _fetched(raw: Any) -> FetchedJob:
    if not raw or isinstance(raw, int):
        return FetchedJob(None, {}, 0, 0)
    flat, job_id = raw[0], raw[1]
    fields = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {}
    delay = int(raw[2] or 0) if len(raw) > 2 else 0
    next_ts = int(raw[3] or 0) if len(raw) > 3 else 0
    return FetchedJob(str(job_id) if job_id else None, fields, delay, next_ts)


@dataclass(frozen=True, slots=True)
class ParentRef:
    """A flow child's parent: where it is, and what its failure does to the parent.

    `policy` is BullMQ's flag in the child's `parent` field: `fpof` (fail the parent), `cpof` (let the parent
    run at once), `idof` (ignore the failure, record it), `rdof` (drop the dependency), or None (the parent
    waits until the child is retried and completes).
    """

    keys: QueueKeys
    job_id: str
    policy: str | None = None

    @property
    def key(self) -> str:
        """The parent's job key."""
        return self.keys.job(self.job_id)

    @property
    def dependencies_key(self) -> str:
        """The set of the parent's pending children."""
        return self.keys.dependencies(self.job_id)

    def packed(self) -> dict[str, Any]:
        """The `parent` value BullMQ stores in the child (`{id, queueKey, <policy>: true}`)."""
        value: dict[str, Any] = {"id": self.job_id, "queueKey": self.keys.qualified_name}
        if self.policy:
            value[self.policy] = True
        return value


def add_script_name(opts: dict[str, Any], has_children: bool = False) -> str:
    """The BullMQ script that adds a job: a flow's parent waits for its children, else the job's options decide."""
    if has_children:
        return "addParentJob"
    if opts.get("delay"):
        return "addDelayedJob"
    if opts.get("priority"):
        return "addPrioritizedJob"
    return "addStandardJob"


_NO_PARENT = (None, None, None)


class QueueScripts:
    """BullMQ's scripts bound to one queue's keys and one client.

    With a `replica_wait`, adding a job and finishing one (complete, fail) are followed by WAIT on the same
    connection (see `conveyor.redis.replication`): a shortfall raises `NotReplicatedError` from `add_job`, and
    comes back as `FetchedJob.replicated == False` from `move_to_finished`.
    """

    def __init__(self, client: Redis, keys: QueueKeys, replica_wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.keys = keys
        self.replica_wait = replica_wait
        self._scripts: dict[str, AsyncScript] = {}
        self._lane = lane_for(client, slot_key=keys.base)  # on a cluster: the lane of the queue's slot
        self._coalescer = ScriptCoalescer(client, replica_wait, self._lane)
        self._restamps: dict[str, asyncio.Future[Any]] = {}  # start times on their way, by job id
        self._loaded_on: dict[str, set[str]] = {}  # script name -> cluster nodes that have it (`load_script_for`)

    @property
    def lane(self) -> DirectLane:
        """The fast lane of this queue's calls (on a cluster, to the primary serving the queue's slot)."""
        return self._lane

    def _script(self, name: str) -> AsyncScript:
        script = self._scripts.get(name)
        if script is None:
            script = self.client.register_script(script_source(name))
            self._scripts[name] = script
        return script

    async def _run(self, name: str, keys: Sequence[str], args: Sequence[Any], pipe: Pipeline | None = None) -> Any:
        if pipe is None:
            return await self._lane.run(self._script(name), keys, args)
        if is_cluster(self.client):
            await load_script_for(
                self.client, self.keys.base, script_source(name), self._loaded_on.setdefault(name, set())
            )
        return await self._script(name)(keys=list(keys), args=list(args), client=pipe)

    async def _run_replicated(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """`_run`, then WAIT on the same connection (raises `NotReplicatedError` on a shortfall)."""
        assert self.replica_wait is not None
        write = ReplicatedPipeline(self.client, self.replica_wait)
        await self._run(name, keys, args, write.pipe)
        return (await write.execute())[0]

    # --- producing -------------------------------------------------------------------------------------

    @cached_property
    def add_keys(self) -> dict[str, tuple[str, ...]]:
        """The KEYS of each add script (by script name), as BullMQ's add scripts take them."""
        # The same for every job of the queue: built once, not per add (the producer's hot path).
        k = self.keys
        return {
            "addStandardJob": (k.wait, k.paused, k.meta, k.id, k.completed, k.delayed, k.active, k.events, k.marker),
            "addDelayedJob": (k.marker, k.meta, k.id, k.delayed, k.completed, k.events),
            "addPrioritizedJob": (
                k.marker,
                k.meta,
                k.id,
                k.prioritized,
                k.delayed,
                k.completed,
                k.active,
                k.events,
                k.pc,
            ),
            "addParentJob": (k.meta, k.id, k.delayed, k.waiting_children, k.completed, k.events),
        }

    async def add_job(
        self,
        *,
        job_id: str,
        name: str,
        data_json: str,
        opts: dict[str, Any],
        timestamp: int,
        parent: ParentRef | None = None,
        has_children: bool = False,
        pipe: Pipeline | None = None,
    ) -> Any:
        """Add one job: delayed, prioritized or standard by its options. In a flow, a job `has_children` waits in
        `waiting-children` (`addParentJob`) until they complete, and a job with a `parent` joins the parent's
        dependencies and carries the failure policy BullMQ's `moveToFinished` reads from its `parent` field.
        Returns the job's id; with a `pipe`, queues the call on it and returns the pipe (the caller checks the
        script's result when the pipe runs).

        Raises:
            NotReplicatedError: (with a `replica_wait`, when no `pipe` is given) the job was written on the master
                but too few replicas acknowledged it in time.
        """
        script = add_script_name(opts, has_children)
        parent_fields = (parent.key, parent.dependencies_key, parent.packed()) if parent else _NO_PARENT
        # ARGV as every add script's header has it: [prefix, id, name, timestamp, parent key, parent dependencies
        # key, parent, repeat job key, deduplication key], the data, the options.
        args = [pack([self.keys.base, job_id, name, timestamp, *parent_fields, None, None]), data_json, pack(opts)]
        keys = self.add_keys[script]
        if pipe is not None:
            return await self._run(script, keys, args, pipe)
        if self.replica_wait is None:
            result = await self._run(script, keys, args)
        else:
            result = await self._run_replicated(script, keys, args)
        raise_for_code(result, job_id=job_id, command="addJob")
        return result

    # --- the worker's lifecycle of a job ---------------------------------------------------------------

    @cached_property
    def _fetch_keys(self) -> tuple[str, ...]:
        # The keys every fetch and every finishing move start with: built once (each job of a busy worker uses them).
        k = self.keys
        return (k.wait, k.active, k.prioritized, k.events, k.stalled, k.limiter, k.delayed, k.paused, k.meta, k.pc)

    def _move_to_active_call(
        self, token: str, lock_ms: int, worker: str, timestamp: int
    ) -> tuple[list[str], list[Any]]:
        opts = pack({"token": token, "lockDuration": lock_ms, "limiter": None, "name": worker})
        return [*self._fetch_keys, self.keys.marker], [self.keys.base, timestamp, opts]

    async def move_to_active(self, *, token: str, lock_ms: int, worker: str, timestamp: int) -> FetchedJob:
        """Take the next job (promoting due delayed jobs first) and lock it with `token`."""
        keys, args = self._move_to_active_call(token, lock_ms, worker, timestamp)
        return _fetched(await self._run("moveToActive", keys, args))

    async def wait_then_move_to_active(
        self, lane: DirectLane, *, wait_s: float, token: str, lock_ms: int, lease_ms: int, worker: str, timestamp: int
    ) -> FetchedJob:
        """`moveToActive` sent right behind a blocking wait for the wake-up marker (BZPOPMIN), on `lane` (the
        fetcher's own): Redis runs it the moment the wait returns, whether a marker came or the wait timed out.
        Its `timestamp` is the time the wait began, so the caller corrects `processedOn` (`restamp_started`).
        Raises `NoScriptError` when Redis did not have the script (it is loaded then; the marker was popped all
        the same: fetch again the usual way). Runs only if the wait returns within `lease_ms` (see
        `fetch_lease`): else nothing is taken."""
        keys, args = self._move_to_active_call(token, lock_ms, worker, timestamp)
        wait = ("BZPOPMIN", self.keys.marker, wait_s)
        lease_key = self.keys.fetch_lease(token)
        script = self._script(LEASED_FETCH)
        _, raw = await lane.wait_then_run(wait, script, [*keys, lease_key], args, Lease(lease_key, lease_ms))
        if isinstance(raw, NoScriptError):
            await lane.command("SCRIPT", "LOAD", script.script)
        if isinstance(raw, Exception):
            raise raw
        return _fetched(raw)

    async def taken_by(self, token: str, *, error: str, besides: str | None = None) -> FetchedJob:
        """The active job locked with `token` (other than `besides`), with its hash, or an empty result: for a
        fetch whose script raised `error` after it took a job. BullMQ's scripts are not atomic on error (what
        they did before it stays), e.g. `moveToActive` increments the job's `ats` last, after locking it."""
        ids = [str(job_id) for job_id in await self.client.lrange(self.keys.active, 0, -1) if job_id != besides]
        locks = await self.client.mget([self.keys.lock(job_id) for job_id in ids]) if ids else []
        for job_id, lock in zip(ids, locks, strict=True):
            if lock == token:
                fields = cast("dict[str, str]", await self.client.hgetall(self.keys.job(job_id)))
                return FetchedJob(job_id, fields, 0, 0, error)
        return FetchedJob(None, {}, 0, 0)

    def restamp_started(self, job_id: str, started_ms: int) -> asyncio.Future[Any]:
        """Set an active job's `processedOn` in the background. The job's completion, failure or retry waits
        for it (`_after_restamp`), so a finished job never keeps the stamp of the wait, which may predate it."""
        future = asyncio.ensure_future(self._lane.command("HSET", self.keys.job(job_id), "processedOn", started_ms))
        self._restamps[job_id] = future
        future.add_done_callback(lambda _: self._restamps.pop(job_id, None))
        return future

    async def _after_restamp(self, job_id: str) -> None:
        pending = self._restamps.get(job_id)
        if pending is not None:
            await asyncio.wait([pending])  # its failure is logged where it was sent

    async def move_to_finished(
        self,
        *,
        job_id: str,
        token: str,
        target: str,
        value: str,
        timestamp: int,
        keep: dict[str, int],
        attempts: int,
        fetch_next: bool,
        lock_ms: int,
        worker: str,
        fields: dict[str, str] | None = None,
    ) -> FetchedJob:
        """Complete (`target="completed"`, value = JSON result) or fail (value = reason) an active job."""
        await self._after_restamp(job_id)
        k = self.keys
        keys = [*self._fetch_keys, k.of(target), k.job(job_id), k.metrics(target), k.marker]
        opts = pack(
            {
                "token": token,
                "keepJobs": keep,
                "lockDuration": lock_ms,
                "attempts": attempts,
                "maxMetricsSize": "",
                "name": worker,
                "limiter": None,
            }
        )
        prop = "returnvalue" if target == "completed" else "failedReason"
        args: list[Any] = [job_id, timestamp, prop, value, target, "1" if fetch_next else "", k.base, opts]
        if fields:
            args.append(_flat(fields))
        # The hot path of a busy worker: finishing calls made together share one round trip (and one WAIT).
        try:
            raw = await self._coalescer.call(self._script("moveToFinished"), keys, args)
        except NotReplicatedError as exc:  # done on the master: the worker decides what a shortfall means
            raise_for_code(exc.results[0], job_id=job_id, command="moveToFinished")
            return replace(_fetched(exc.results[0]), replicated=False)
        raise_for_code(raw, job_id=job_id, command="moveToFinished")
        return _fetched(raw)

    async def move_to_delayed(
        self,
        *,
        job_id: str,
        token: str,
        timestamp: int,
        delay_ms: int,
        fields: dict[str, str],
        count_attempt: bool = True,
    ) -> None:
        """Send an active job back to `delayed` for `delay_ms`: a retry with backoff (counts an attempt), or a
        rate-limited job put off without counting one."""
        await self._after_restamp(job_id)
        k = self.keys
        keys = [
            k.marker,
            k.active,
            k.prioritized,
            k.delayed,
            k.job(job_id),
            k.events,
            k.meta,
            k.stalled,
            k.wait,
            k.limiter,
            k.pc,
        ]
        args = [k.base, str(timestamp), job_id, token, delay_ms, "0" if count_attempt else "1", _flat(fields), "0"]
        raise_for_code(await self._run("moveToDelayed", keys, args), job_id=job_id, command="moveToDelayed")

    async def retry_job(self, *, job_id: str, token: str, timestamp: int, fields: dict[str, str]) -> None:
        """Send an active job straight back to waiting (a retry without delay); counts an attempt."""
        await self._after_restamp(job_id)
        k = self.keys
        keys = [
            k.active,
            k.wait,
            k.paused,
            k.job(job_id),
            k.meta,
            k.events,
            k.delayed,
            k.prioritized,
            k.pc,
            k.marker,
            k.stalled,
        ]
        args = [k.base, timestamp, "LPUSH", job_id, token, _flat(fields)]
        raise_for_code(await self._run("retryJob", keys, args), job_id=job_id, command="retryJob")

    async def hand_back(self, job_id: str, token: str) -> None:
        """Return an active job to waiting (keeping its priority) without counting an attempt."""
        k = self.keys
        keys = [k.active, k.wait, k.stalled, k.paused, k.meta, k.limiter, k.prioritized, k.marker, k.events]
        result = await self._run("moveJobFromActiveToWait", keys, [job_id, token, k.job(job_id)])
        raise_for_code(result, job_id=job_id, command="moveJobFromActiveToWait")
        # The script wakes idle workers only for unprioritized jobs; wake them for prioritized ones too.
        await self.client.zadd(k.marker, {"0": 0})

    async def extend_locks(self, job_ids: Sequence[str], tokens: Sequence[str], lock_ms: int) -> list[str]:
        """Renew the locks of many active jobs in one call; returns the ids whose lock was lost."""
        args = [self.keys.base, pack(list(tokens)), pack(list(job_ids)), lock_ms]
        failed = await self._run("extendLocks", [self.keys.stalled], args)
        return [str(job_id) for job_id in failed or []]

    async def move_stalled_jobs_to_wait(self, *, max_stalled: int, timestamp: int, interval_ms: int) -> list[str]:
        """Requeue active jobs whose lock expired since the last check; returns their ids."""
        k = self.keys
        keys = [k.stalled, k.wait, k.active, k.stalled_check, k.meta, k.paused, k.marker, k.events, k.repeat]
        stalled = await self._run("moveStalledJobsToWait", keys, [max_stalled, k.base, timestamp, interval_ms])
        return [str(job_id) for job_id in stalled or []]

    async def update_progress(self, job_id: str, progress: Any) -> None:
        """Store a job's progress (a number or a JSON object) and emit a `progress` event."""
        k = self.keys
        args = [job_id, json.dumps(progress, separators=(",", ":"))]
        result = await self._run("updateProgress", [k.job(job_id), k.events, k.meta], args)
        raise_for_code(result, job_id=job_id, command="updateProgress")

    async def add_log(self, job_id: str, line: str, keep_logs: int = 0) -> int:
        """Append a log line to a job; returns the number of lines."""
        result = await self._run(
            "addLog", [self.keys.job(job_id), self.keys.logs(job_id)], [job_id, line, keep_logs or ""]
        )
        raise_for_code(result, job_id=job_id, command="addLog")
        return int(result)

    # --- inspecting and managing ----------------------------------------------------------------------

    async def get_counts(self, states: Sequence[str]) -> list[int]:
        """Count jobs per BullMQ state (`waiting`, `active`, `completed`, `failed`, `delayed`, …)."""
        return [int(n) for n in await self._run("getCounts", [self.keys.base], list(states))]

    async def get_state(self, job_id: str) -> str:
        """The BullMQ state of a job, or `unknown`."""
        k = self.keys
        keys = [k.completed, k.failed, k.delayed, k.active, k.wait, k.paused, k.waiting_children, k.prioritized]
        return str(await self._run("getStateV2", keys, [job_id]))

    async def pause(self, paused: bool) -> None:
        """Pause or resume the queue for every worker."""
        k = self.keys
        src, dst = (k.wait, k.paused) if paused else (k.paused, k.wait)
        await self._run(
            "pause",
            [src, dst, k.meta, k.prioritized, k.events, k.delayed, k.marker],
            ["paused" if paused else "resumed", "1"],
        )

    async def obliterate(self, count: int, force: bool) -> int:
        """Delete up to `count` jobs and the queue's keys; returns >0 when more remain. Queue must be paused."""
        result = await self._run("obliterate", [self.keys.meta, self.keys.base], [count, "force" if force else ""])
        raise_for_code(result, job_id="", command="obliterate")
        return int(result)

    async def drain(self, include_delayed: bool) -> None:
        """Remove every waiting (and optionally delayed) job."""
        k = self.keys
        await self._run(
            "drain", [k.wait, k.paused, k.delayed, k.prioritized, k.repeat], [k.base, "1" if include_delayed else "0"]
        )

    async def promote(self, job_id: str) -> None:
        """Move a delayed job to waiting now."""
        k = self.keys
        keys = [k.delayed, k.wait, k.paused, k.meta, k.prioritized, k.active, k.pc, k.events, k.marker]
        raise_for_code(await self._run("promote", keys, [k.base, job_id]), job_id=job_id, command="promote")

    async def remove_job(self, job_id: str) -> bool:
        """Remove a job that is not active, with its logs; False if it was locked (active)."""
        k = self.keys
        result = await self._run("removeJob", [k.job(job_id), k.repeat], [job_id, "1", k.base])
        return bool(result == 1)

    async def reprocess_job(self, job_id: str, state: str, *, lifo: bool = False) -> None:
        """Move a failed or completed job back to waiting, resetting its attempts."""
        k = self.keys
        keys = [k.job(job_id), k.events, k.of(state), k.wait, k.meta, k.active, k.marker, k.prioritized, k.pc]
        prop = "failedReason" if state == "failed" else "returnvalue"
        args = [job_id, "RPUSH" if lifo else "LPUSH", prop, state, "1", "1"]
        raise_for_code(await self._run("reprocessJob", keys, args), job_id=job_id, command="reprocessJob")

    async def clean_jobs_in_set(self, state: str, timestamp: int, limit: int) -> list[str]:
        """Remove up to `limit` jobs of a finished `state` (completed, failed) that finished at or before
        `timestamp` (ms), with their logs; returns their ids."""
        k = self.keys
        removed = await self._run(
            "cleanJobsInSet", [k.of(state), k.events, k.repeat], [k.base, timestamp, limit, state]
        )
        return [str(job_id) for job_id in removed or []]

    async def move_jobs_to_wait(self, state: str, count: int, timestamp: int) -> bool:
        """Move up to `count` jobs of `state` (failed, completed, delayed) to waiting; True if more remain."""
        k = self.keys
        keys = [k.base, k.events, k.of(state), k.wait, k.paused, k.meta, k.active, k.marker]
        return bool(await self._run("moveJobsToWait", keys, [count, timestamp, state]) == 1)
