"""A worker process: serves one or more queues until told to stop, then shuts down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from redis.asyncio import Redis

from conveyor.config import RateLimit
from conveyor.queue.queue import Queue
from conveyor.redis.client_names import bullmq_worker_name
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.keys import ConveyorKeys
from conveyor.worker.dead_letters import DeadLetterKeeper
from conveyor.worker.handler import HandlerLookup
from conveyor.worker.hooks import HookSet, WorkerHook
from conveyor.worker.maintenance import (
    CancellationListener,
    EvictionPolicyWatch,
    LockRenewer,
    StalledJobSweeper,
    stopped_within,
)
from conveyor.worker.registry import WorkerInfo, WorkerRegistry, now_utc
from conveyor.worker.routing import JobTypeRouting
from conveyor.worker.runner import QueueRunner, RunnerConfig
from conveyor.worker.scheduler import Scheduler

log = logging.getLogger(__name__)

_running: dict[int, Worker] = {}  # the workers serving in this process (while `run` runs), by id


def running_jobs() -> dict[str, int]:
    """Jobs running now in this process's workers, by queue (`Worker.running_jobs` summed); safe to call from
    other threads, e.g. a metrics server's."""
    counts: dict[str, int] = {}
    for worker in list(_running.values()):
        for queue, n in worker.running_jobs().items():
            counts[queue] = counts.get(queue, 0) + n
    return counts


@dataclass(frozen=True)
class WorkerConfig:
    """Timings of a worker process (defaults recover a killed worker's jobs within ~10 s)."""

    lock_ms: int = 6000
    stalled_interval_ms: int = 4000
    max_stalled: int = 1
    heartbeat_s: float = 2.0
    eviction_check_s: float = 60.0  # how often Redis' maxmemory-policy is re-read
    shutdown_grace_s: float = 30.0
    name: str = ""
    unknown_type_grace_s: float = 30.0  # a job whose type no live worker advertises fails after this long
    group_limits: dict[str, RateLimit] = field(default_factory=dict)  # per job `rate_key`


class Worker:
    """Runs the given queues, each with its own concurrency, in this process's event loop.

    Graceful shutdown (`request_stop`, SIGTERM, SIGINT): stop fetching, let active jobs finish within the
    grace period, then hand the rest back to waiting. No job is lost and none is counted as failed. A sync
    handler still running in a thread then is waited for (a thread cannot be stopped, and handing its job back
    would run it twice at once): its lock stays renewed and its outcome is recorded when it returns. A second
    stop request ends that wait; those jobs are then requeued by the stalled-job check once their locks lapse.

    `serving` is set once `run` has written the first heartbeat and started the fetchers: from then on the live
    worker list (`Conveyor.workers`, the "no live worker" warning of `add`) includes this worker.
    """

    def __init__(
        self,
        client: Redis,
        queues: Sequence[tuple[Queue, int]],
        lookup: HandlerLookup,
        make_blocking_client: Callable[..., Redis],
        config: WorkerConfig | None = None,
        clock: Callable[[], float] = time.time,
        hooks: Sequence[WorkerHook] = (),
        job_types: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        """`job_types` (queue -> the types `lookup` has handlers for) is what the worker advertises to the
        others, so a job it takes without having a handler for it goes to one that does (see
        `conveyor.worker.routing`). `make_blocking_client(name=...)` makes a client whose connection has that
        CLIENT SETNAME name: each queue's fetch connection is named as BullMQ names a worker's, so Node
        `Queue.getWorkers()` and Bull Board list this worker (`conveyor.redis.client_names`)."""
        self.client = client
        self.config = config or WorkerConfig()
        self.id = uuid.uuid4().hex[:12]
        self.name = self.config.name or f"{socket.gethostname()}:{os.getpid()}:{self.id[:6]}"
        self._clock = clock
        self._make_blocking = make_blocking_client
        self._blocking: list[Redis] = []
        self.hooks = HookSet(hooks)
        total = sum(concurrency for _, concurrency in queues)
        self.executor = ThreadPoolExecutor(max_workers=max(4, total), thread_name_prefix="conveyor-job")
        served_names = {queue.name for queue, _ in queues}
        self.job_types = {q: sorted(types) for q, types in (job_types or {}).items() if q in served_names}
        keys = queues[0][0].conveyor_keys if queues else ConveyorKeys("bull")
        self.registry = WorkerRegistry(client, keys, ttl_s=self.config.heartbeat_s * 3)
        self.eviction = EvictionPolicyWatch(client, self.config.eviction_check_s)
        self.runners = self._make_runners(queues, lookup, clock)
        self._duties = [
            LockRenewer(client, keys, self.runners, self.config.lock_ms).run,
            StalledJobSweeper(
                self.runners, self.config.stalled_interval_ms, self.config.max_stalled, clock, self.hooks
            ).run,
            CancellationListener(self._blocking_client(), keys, self.runners).run,
            self._heartbeat,
            self.eviction.run,
        ]
        served = [runner.queue for runner in self.runners]
        if served:  # dead letters (a hook, plus a sweep and alert duty) and the cron/interval scheduler
            dead_letters = DeadLetterKeeper(served, clock=clock)
            self.hooks.add(dead_letters)
            # A 30 s leader lock: renewed every 10 s, so an idle worker costs Redis next to nothing; a dead
            # leader is replaced within about 30 s (ticks are fired by timers, not by this period).
            self._duties += [dead_letters.run, Scheduler(client, served, clock=clock).run]
        self._stop = asyncio.Event()
        self._force = asyncio.Event()  # a second stop request: stop waiting for handler threads
        self._duties_done = asyncio.Event()
        # Set once the worker serves: its fetchers run and its first heartbeat is in Redis, so a producer that
        # asks for the live workers from then on finds this one (`conveyor worker` prints its banner then).
        self.serving = asyncio.Event()
        self._started = now_utc(clock)

    def _make_runners(
        self, queues: Sequence[tuple[Queue, int]], lookup: HandlerLookup, clock: Callable[[], float]
    ) -> list[QueueRunner]:
        routing = JobTypeRouting(self.registry.list, self.id, self.config.unknown_type_grace_s)
        return [
            QueueRunner(
                queue,
                self._blocking_client(bullmq_worker_name(queue.keys.prefix, queue.name, self.name)),
                lookup,
                self.executor,
                self._runner_config(queue, concurrency),
                clock,
                self.hooks,
                routing,
            )
            for queue, concurrency in queues
        ]

    def _runner_config(self, queue: Queue, concurrency: int) -> RunnerConfig:
        """How one queue's runner fetches: this worker's settings plus the queue's own."""
        defaults = queue.defaults
        return RunnerConfig(
            queue.name,
            concurrency,
            self.config.lock_ms,
            self.name,
            worker_limit=defaults.worker_rate_limit,
            group_limits=self.config.group_limits,
            global_concurrency=defaults.global_concurrency is not None,
            reserved_slots=min(defaults.reserved_slots, concurrency - 1),
            reserved_priority=defaults.reserved_priority,
            prefetch=concurrency // 4 if defaults.prefetch is None else defaults.prefetch,
        )

    def _blocking_client(self, name: str | None = None) -> Redis:
        client = self._make_blocking() if name is None else self._make_blocking(name=name)
        self._blocking.append(client)
        return client

    def request_stop(self) -> None:
        """Begin a graceful shutdown; a second call during the shutdown stops waiting for sync handlers."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT start a graceful shutdown."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> None:
        """Serve until `request_stop`, then shut down gracefully."""
        await self._prepare_queues()
        await self._beat()
        # Duties (lock renewal above all) outlive the stop request: they end only after the grace period.
        duties = [asyncio.create_task(duty(self._duties_done)) for duty in self._duties]
        fetchers = [asyncio.create_task(runner.run(), name=f"fetch:{runner.queue.name}") for runner in self.runners]
        log.info("worker %s serving %s", self.name, {r.queue.name: r.config.concurrency for r in self.runners})
        self.serving.set()
        _running[id(self)] = self
        try:
            await self._stop.wait()
        finally:
            try:
                await self._shutdown(fetchers, duties)
            finally:
                _running.pop(id(self), None)

    def running_jobs(self) -> dict[str, int]:
        """Jobs running now (started, their outcome not yet recorded) by queue; safe to call from other threads."""
        return {
            runner.queue.name: sum(1 for job in list(runner.active.values()) if job.task is not None)
            for runner in self.runners
        }

    async def _prepare_queues(self) -> None:
        """Refuse a queue of an unsupported BullMQ layout (`UnsupportedLayoutError`), then write the configured
        queue-wide limits (they live in Redis, for every worker, Node ones too), leaving those not configured as
        they are; a queue-wide concurrency in force, whoever set it, changes how the queue's runner fetches."""
        for runner in self.runners:
            await runner.queue.check_layout()
        for runner in self.runners:
            defaults = runner.queue.defaults
            in_force = await runner.queue.apply_limits(defaults.rate_limit, defaults.global_concurrency)
            if in_force.global_concurrency is not None and not runner.config.global_concurrency:
                runner.config = replace(runner.config, global_concurrency=True)

    async def _shutdown(self, fetchers: list[asyncio.Task[None]], duties: list[asyncio.Task[None]]) -> None:
        for runner in self.runners:
            runner.stop_fetching()
        jobs = [job.task for runner in self.runners for job in runner.active.values() if job.task]
        if jobs:
            log.info("waiting up to %.1f s for %d active job(s)", self.config.shutdown_grace_s, len(jobs))
            await asyncio.wait(jobs, timeout=self.config.shutdown_grace_s)
        handed = sum([await runner.hand_back() for runner in self.runners])
        if handed:
            log.warning("handed %d unfinished job(s) back to waiting", handed)
        await self._wait_for_handler_threads()
        await asyncio.wait(fetchers, timeout=5)
        self._duties_done.set()
        for task in [*fetchers, *duties]:
            task.cancel()
        # Bounded: redis-py can swallow a cancellation that lands inside a pipeline's execute (a known redis-py
        # issue), and a duty that missed its cancel must not keep the process from exiting.
        await asyncio.wait([*fetchers, *duties], timeout=5)
        with contextlib.suppress(*CONNECTION_FAILURES):
            await self.registry.remove(self.id)
        for client in self._blocking:
            await client.aclose()
        self.executor.shutdown(wait=False, cancel_futures=True)
        log.info("worker %s stopped", self.name)

    async def _wait_for_handler_threads(self) -> None:
        in_threads = {runner: runner.in_threads() for runner in self.runners}
        tasks = [job.task for jobs in in_threads.values() for job in jobs if job.task is not None]
        if not tasks:
            return
        log.warning(
            "waiting for %d sync handler(s) still running after the grace period: a thread cannot be stopped, "
            "so their jobs finish here (stop again to leave them to the stalled-job check instead)",
            len(tasks),
        )
        force = asyncio.create_task(self._force.wait())
        finished = asyncio.create_task(asyncio.wait(tasks))  # cancelling it leaves the jobs' tasks alone
        await asyncio.wait([finished, force], return_when=asyncio.FIRST_COMPLETED)
        force.cancel()
        finished.cancel()
        if self._force.is_set():
            for runner, jobs in in_threads.items():
                runner.abandon([job for job in jobs if job.task is not None and not job.task.done()])
            await asyncio.wait(tasks, timeout=5)

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not await stopped_within(stop, self.config.heartbeat_s):  # the first beat is `run`'s
            await self._beat()

    async def _beat(self) -> None:
        try:
            await self.registry.beat(self.info())
        except CONNECTION_FAILURES as exc:
            log.warning("heartbeat failed (%s)", exc)

    def info(self) -> WorkerInfo:
        """This worker as the live worker list shows it."""
        return WorkerInfo(
            id=self.id,
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues={r.queue.name: r.config.concurrency for r in self.runners},
            active={r.queue.name: len(r.active) for r in self.runners},
            processed=sum(r.processed for r in self.runners),
            started_at=self._started,
            last_beat=now_utc(self._clock),
            job_types=self.job_types,
        )
