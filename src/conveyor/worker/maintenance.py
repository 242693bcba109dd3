"""Periodic duties of a worker process: renewing locks, requeueing stalled jobs, honouring cancellations,
watching Redis' eviction policy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from conveyor.redis.cluster import refresh_topology
from conveyor.redis.connection import read_eviction_policy
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.keys import ConveyorKeys
from conveyor.worker.hooks import HookSet
from conveyor.worker.runner import QueueRunner

log = logging.getLogger(__name__)


async def stopped_within(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`, waking early when `stop` is set; True if it is set. Duties end on this event rather
    than on cancellation alone (redis-py can swallow a cancellation inside a pipeline call)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


class LockRenewer:
    """Renews the locks of every active job, one `extendLocks` call per queue, every third of the lock time.

    It also checks the cancellation flags of active jobs, which covers cancel messages missed while the
    pub/sub connection was down. A job whose lock could not be renewed is cancelled locally: another
    worker may already run it, and this one must not finish it.
    """

    def __init__(self, client: Redis, keys: ConveyorKeys, runners: Sequence[QueueRunner], lock_ms: int) -> None:
        self.client = client
        self.keys = keys
        self.runners = runners
        self.lock_ms = lock_ms

    async def run(self, stop: asyncio.Event) -> None:
        """Renew until `stop` is set."""
        # Every third of the lock time (BullMQ: half): a late renewal under heavy load still lands in time.
        while not await stopped_within(stop, self.lock_ms / 3000):
            try:
                await self.renew_once()
            except CONNECTION_FAILURES as exc:
                log.warning("lock renewal failed (%s); retrying", exc)

    async def renew_once(self) -> None:
        """One renewal round over every queue."""
        for runner in self.runners:
            jobs = list(runner.active.values())
            if not jobs:
                continue
            sent = time.monotonic()
            lost = await runner.scripts.extend_locks(
                [job.job_id for job in jobs], [job.token for job in jobs], self.lock_ms
            )
            for job in jobs:  # renewed: a prefetched one starts without checking its lock again (see `fencing`)
                if job.job_id not in lost:
                    job.lock_since = max(job.lock_since, sent)
            tokens = {job.job_id: job.token for job in jobs}
            for job_id in lost:
                # A job that finished while the renewal was in flight has no lock to renew: not a loss.
                if runner.holds(job_id, tokens[job_id]):
                    log.warning("lost the lock of job %s in %s; stopping it here", job_id, runner.queue.name)
                    runner.cancel(job_id)
            flags = await self.client.exists(*[self.keys.cancel_flag(runner.queue.name, j.job_id) for j in jobs])
            if flags:
                await self._apply_flags(runner, [j.job_id for j in jobs])

    async def _apply_flags(self, runner: QueueRunner, job_ids: list[str]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.exists(self.keys.cancel_flag(runner.queue.name, job_id))
        for job_id, flagged in zip(job_ids, await pipe.execute(), strict=True):
            if flagged:
                runner.cancel(job_id)


class StalledJobSweeper:
    """Requeues jobs whose worker died (their lock expired), at start and then every `interval_ms`.

    BullMQ's script marks all active jobs as suspects, and on the next round requeues the suspects whose lock
    is gone; one Redis-side guard key makes one worker per interval do the work however many run.
    """

    def __init__(
        self,
        runners: Sequence[QueueRunner],
        interval_ms: int,
        max_stalled: int = 1,
        clock: Callable[[], float] = time.time,
        hooks: HookSet | None = None,
    ) -> None:
        self.runners = runners
        self.hooks = hooks or HookSet()
        self.interval_ms = interval_ms
        self.max_stalled = max_stalled
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep now and then every interval, until `stop` is set."""
        while not stop.is_set():
            try:
                await self.sweep_once()
            except CONNECTION_FAILURES as exc:
                log.warning("stalled-job check failed (%s); retrying", exc)
            await stopped_within(stop, self.interval_ms / 1000)

    async def sweep_once(self) -> list[str]:
        """One check over every queue; returns the ids requeued."""
        requeued: list[str] = []
        for runner in self.runners:
            if not await runner.queue.client.llen(runner.queue.keys.active):
                continue  # nothing active anywhere, so nothing can stall: one read instead of the whole script
            ids = await runner.scripts.move_stalled_jobs_to_wait(
                max_stalled=self.max_stalled, timestamp=int(self._clock() * 1000), interval_ms=self.interval_ms
            )
            if ids:
                log.warning("requeued %d stalled job(s) of %s: %s", len(ids), runner.queue.name, ids)
                self.hooks.jobs_stalled(runner.queue.name, ids)
            requeued.extend(ids)
        return requeued


class CancellationListener:
    """Receives cancel requests (`<queue>:<job id>` on a pub/sub channel) and stops the job if it runs here."""

    def __init__(self, client: Redis, keys: ConveyorKeys, runners: Sequence[QueueRunner]) -> None:
        self.client = client
        self.keys = keys
        self.by_queue = {runner.queue.name: runner for runner in runners}

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until `stop` is set, resubscribing after connection failures."""
        while not stop.is_set():
            try:
                await self._listen(stop)
            except CONNECTION_FAILURES as exc:
                log.warning("cancel listener disconnected (%s); resubscribing", exc)
                await stopped_within(stop, 0.5)
                await refresh_topology(self.client)  # on a cluster, the channel's node may have failed over

    async def _listen(self, stop: asyncio.Event) -> None:
        async with self.client.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.keys.cancel_channel)
            while not stop.is_set():
                message = await pubsub.get_message(timeout=1.0)  # a socket wait, not a Redis command
                if message is None:
                    continue
                queue, _, job_id = str(message["data"]).rpartition(":")
                runner = self.by_queue.get(queue)
                if runner is not None and runner.cancel(job_id):
                    log.info("cancelling job %s of %s", job_id, queue)


class EvictionPolicyWatch:
    """Re-reads Redis' `maxmemory-policy` every `interval_s` while the worker runs: the check at start does not
    see an operator (or a managed service's failover) switching it to a policy that evicts, silently dropping
    jobs when memory fills up. Logs a WARNING once per change to an evicting policy, INFO when it is back to
    `noeviction`; `policy` and `degraded` say what it last read."""

    def __init__(self, client: Redis, interval_s: float) -> None:
        self.client = client
        self.interval_s = interval_s
        self.policy: str | None = None

    @property
    def degraded(self) -> bool:
        """True while the last policy read is one that evicts keys."""
        return self.policy is not None and self.policy != "noeviction"

    async def run(self, stop: asyncio.Event) -> None:
        """Read the policy now (what `check_server` already reported at connect) and then every interval."""
        with contextlib.suppress(*CONNECTION_FAILURES):
            self.policy = await read_eviction_policy(self.client)
        while not await stopped_within(stop, self.interval_s):
            try:
                self.observe(await read_eviction_policy(self.client))
            except CONNECTION_FAILURES as exc:
                log.debug("eviction policy check failed (%s)", exc)  # the other duties report an outage

    def observe(self, policy: str | None) -> None:
        """Take a reading: log if the policy changed (an unreadable policy changes nothing)."""
        if policy is None or policy == self.policy:
            return
        previous, self.policy = self.policy, policy
        if self.degraded:
            log.warning(
                "IMPORTANT: Redis maxmemory-policy changed from %r to %r: when memory fills up, jobs can be "
                "silently evicted; set maxmemory-policy noeviction (CONFIG SET and redis.conf).",
                previous, policy, extra={"eviction_policy": policy},
            )  # fmt: skip
        elif previous is not None:
            log.info("Redis maxmemory-policy is back to %r (was %r)", policy, previous)
