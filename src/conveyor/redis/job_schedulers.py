"""BullMQ's job schedulers of one queue: its `addJobScheduler`, `updateJobScheduler` and `removeJobScheduler`
scripts (from the pinned `bullmq` package, like every other script) and the reads BullMQ's `getJobSchedulers` does.

A job scheduler is a member of the queue's `repeat` sorted set (scored by its next run, ms) plus a hash
`repeat:<id>` (`name`, `pattern` or `every`, `tz`, `startDate`, `offset`, `data`, `opts`, `ic` the iteration
count, and whatever else a runtime adds: BullMQ ignores fields it does not know). Each iteration is one delayed
job `repeat:<id>:<run ms>` whose hash names the scheduler in `rjk`; whoever takes that job adds the next one
(`update`), and the script adds it only if the job is the scheduler's current iteration, so each run is added
once however many workers, of either runtime, take jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript

from conveyor.redis.cluster import is_cluster, load_script_for
from conveyor.redis.keys import QueueKeys
from conveyor.redis.script_errors import ScriptError
from conveyor.redis.scripts import pack, script_source


class SchedulerJobIdCollisionError(ScriptError):
    """The job of that run already exists (it is running or finished): change the schedule after it ends."""

    code = -10


class SchedulerSlotsBusyError(ScriptError):
    """The next 32 runs of this interval all have jobs already (left by an earlier scheduler of that id)."""

    code = -11


def iteration_job_id(scheduler_id: str, run_ms: int | str) -> str:
    """The id BullMQ gives the job of one run of a job scheduler."""
    return f"repeat:{scheduler_id}:{run_ms}"


@dataclass(frozen=True, slots=True)
class StoredScheduler:
    """A job scheduler as stored: its id, next run (ms) and raw hash fields."""

    scheduler_id: str
    next_ms: int
    fields: dict[str, str]


class JobSchedulerStore:
    """The job schedulers of one queue (see the module docstring)."""

    def __init__(self, client: Redis, keys: QueueKeys) -> None:
        self.client = client
        self.keys = keys
        self._scripts: dict[str, AsyncScript] = {}
        self._loaded_on: set[str] = set()  # cluster nodes that have `addJobScheduler` (see `load_script_for`)

    def _script(self, name: str) -> AsyncScript:
        if name not in self._scripts:
            self._scripts[name] = self.client.register_script(script_source(name))
        return self._scripts[name]

    def _enqueue_keys(self) -> list[str]:
        k = self.keys
        return [k.repeat, k.delayed, k.wait, k.paused, k.meta, k.prioritized, k.marker, k.id, k.events, k.pc]

    async def upsert(
        self,
        scheduler_id: str,
        *,
        next_ms: int,
        spec: dict[str, Any],
        data_json: str,
        template_opts: dict[str, Any],
        job_opts: dict[str, Any],
        now_ms: int,
        pipe: Pipeline | None = None,
    ) -> Any:
        """Create or replace a job scheduler (BullMQ's `upsertJobScheduler`) and queue its next run's job.
        `spec` holds `name` and `pattern`/`tz` or `every`/`startDate`; `next_ms` is used for patterns (an
        interval's next run is computed by the script). Returns `[job id, delay]`, or the queued pipe."""
        keys = [*self._enqueue_keys(), self.keys.active]
        args: list[Any] = [next_ms, pack(spec), scheduler_id, data_json, pack(template_opts), pack(job_opts), now_ms,
                self.keys.base, ""]  # fmt: skip
        if pipe is not None and is_cluster(self.client):  # a cluster pipeline sends EVALSHA without loading it
            await load_script_for(self.client, self.keys.base, script_source("addJobScheduler"), self._loaded_on)
        result = await self._script("addJobScheduler")(keys=keys, args=args, client=pipe or self.client)
        if pipe is None:
            raise_scheduler_error(result, scheduler_id)
        return result

    async def advance(
        self, scheduler_id: str, *, producer_job_id: str, next_ms: int, job_opts: dict[str, Any], now_ms: int
    ) -> str | None:
        """Add the next run's job after `producer_job_id` (a run's job just taken by a worker), as BullMQ's worker
        does; a no-op (None) unless that job is the scheduler's current run and the next one is not there yet."""
        keys = [*self._enqueue_keys(), self.keys.job(producer_job_id), self.keys.active]
        args: list[Any] = [next_ms, scheduler_id, "{}", pack(job_opts), now_ms, self.keys.base, producer_job_id]
        result = await self._script("updateJobScheduler")(keys=keys, args=args)
        return str(result) if result else None

    async def remove(self, scheduler_id: str) -> bool:
        """Remove a job scheduler and its pending next run's job; False when there was none."""
        keys = [self.keys.repeat, self.keys.delayed, self.keys.events]
        result = await self._script("removeJobScheduler")(keys=keys, args=[scheduler_id, self.keys.base])
        return bool(result == 0)

    async def get(self, scheduler_id: str) -> StoredScheduler | None:
        """One job scheduler, or None."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zscore(self.keys.repeat, scheduler_id)
        pipe.hgetall(self.keys.job_scheduler(scheduler_id))
        score, fields = await pipe.execute()
        if score is None or not fields:
            return None
        return StoredScheduler(scheduler_id, int(score), _text(fields))

    async def all(self) -> list[StoredScheduler]:
        """Every job scheduler of the queue (legacy repeatable jobs, which have no hash, are left out)."""
        members = cast("list[tuple[Any, float]]", await self.client.zrange(self.keys.repeat, 0, -1, withscores=True))
        pipe = self.client.pipeline(transaction=False)
        ids = [_str(member) for member, _ in members]
        for scheduler_id in ids:
            pipe.hgetall(self.keys.job_scheduler(scheduler_id))
        hashes = await pipe.execute() if ids else []
        found = zip(ids, (score for _, score in members), hashes, strict=True)
        return [StoredScheduler(i, int(score), _text(fields)) for i, score, fields in found if fields]


def raise_scheduler_error(result: Any, scheduler_id: str) -> None:
    """The typed error of a negative return code of `addJobScheduler`."""
    if isinstance(result, int) and result < 0:
        error = {-10: SchedulerJobIdCollisionError, -11: SchedulerSlotsBusyError}.get(result, ScriptError)
        raise error(scheduler_id, "addJobScheduler")


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _text(fields: dict[Any, Any]) -> dict[str, str]:
    return {_str(key): _str(value) for key, value in fields.items()}
