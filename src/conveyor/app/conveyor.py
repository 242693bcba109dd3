"""The `Conveyor` object: settings, the standard and configured queues, and the handler registry."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis

from conveyor.app.job_types import PayloadModels
from conveyor.config import Settings, load_settings
from conveyor.errors import ConveyorError
from conveyor.queue.errors import InvalidPayloadError, UnknownQueueError
from conveyor.queue.hooks import ProducerHooks
from conveyor.queue.options import JobOptions, job_options
from conveyor.queue.queue import NewJob, Queue
from conveyor.redis.connection import RedisTarget, ServerHealth, check_server, ping_or_raise, resolve_target
from conveyor.redis.discovery import EmbeddedMode
from conveyor.redis.embedded import EmbeddedRedis
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.lane import close_lane
from conveyor.redis.replication import ReplicaWait
from conveyor.worker.batching import Batch
from conveyor.worker.handler import Handler
from conveyor.worker.hooks import WorkerHook
from conveyor.worker.node_workers import node_workers
from conveyor.worker.registry import WorkerInfo, WorkerRegistry, advertised_types
from conveyor.worker.sandbox import Sandbox, importable_name
from conveyor.worker.worker import Worker, WorkerConfig

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

ADVERTISED_TTL_S = 1.0  # how long `add` trusts its last read of the job types live workers advertise
UNSERVED_LOG_EVERY_S = 60.0  # `add` logs "no live worker handles it" once a minute per queue and type


class NotConnectedError(ConveyorError):
    """The Conveyor object was used before `connect()` (or `async with app:`)."""

    def __init__(self) -> None:
        super().__init__("Conveyor is not connected: call `await app.connect()` or use `async with app:` first.")


class Conveyor:
    """One Conveyor application: register handlers, enqueue jobs, manage queues, run workers.

    Example:
        app = Conveyor()

        @app.handler("indexing", "index-file", payload=IndexFile)
        async def index_file(payload: IndexFile, ctx: JobContext) -> dict[str, int]: ...

        async with app:
            await app.add("indexing", "index-file", {"filePath": "src/index.ts"}, priority="high")
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.queue_settings = self.settings.queue_settings()
        self.handlers: dict[tuple[str, str], Handler] = {}
        self.payload_models = PayloadModels()  # declared without a handler (see `job_type`)
        self.hooks: list[WorkerHook] = []  # added to every worker this app makes (metrics, tracing …)
        self.producer_hooks = ProducerHooks()  # wrap every add/add_bulk of every queue (tracing …)
        self.target: RedisTarget | None = None
        self.embedded: EmbeddedRedis | None = None
        # With no Redis configured: may `connect` start an embedded server, and which may it attach to?
        # (PROJECT: this folder's or one above it; the CLI's one-shot commands only attach.)
        self.embedded_mode = EmbeddedMode.PROJECT
        self.health: ServerHealth | None = None
        self._client: Redis | None = None
        self._queues: dict[str, Queue] = {}
        self._advertised: tuple[float, dict[str, set[str]]] | None = None  # (read at, queue -> job types)
        self._unserved_logged: dict[tuple[str, str], float] = {}

    # --- handlers --------------------------------------------------------------------------------------

    def handler(
        self,
        queue: str,
        job_type: str,
        *,
        payload: type[BaseModel] | None = None,
        sandbox: Sandbox | None = None,
        batch: Batch | None = None,
    ) -> Callable[[F], F]:
        """Register a function (async, or sync to run in a thread) for jobs of `job_type` on `queue`.

        With `payload`, producers' data is validated against the model at enqueue (bad data is refused and
        nothing is written) and the handler receives a model instance. With `sandbox`, every attempt runs in a
        child process under those limits (fault isolation, not a security boundary); the function and model
        must be importable by name. With `batch`, the function takes a list of payloads (see
        `conveyor.worker.batching`).
        """
        self._check_queue(queue)

        def register(func: F) -> F:
            if sandbox is not None:
                importable_name(func)
                if payload is not None:
                    importable_name(payload)
            if sandbox is not None and batch is not None:
                raise ConveyorError("A handler is either sandboxed or batched, not both.")
            self.handlers[(queue, job_type)] = Handler(queue, job_type, func, payload, sandbox, batch)
            return func

        return register

    def job_type(self, queue: str, job_type: str, *, payload: type[BaseModel]) -> None:
        """Declare the payload model of a job type without registering a handler for it.

        A producer-only app (a web process that enqueues, a script, a CLI `--app`) then validates what it adds
        against the model, as the worker that runs the handler will: bad data is refused, nothing is written.
        The standard queues' job types are declared already (see `conveyor.app.job_types`).
        """
        self._check_queue(queue)
        self.payload_models.declare(queue, job_type, payload)

    def payload_model(self, queue: str, job_type: str) -> type[BaseModel] | None:
        """The model `add` validates a job type's payload against: its handler's, else the declared one."""
        handler = self.lookup(queue, job_type)
        if handler is not None:
            return handler.payload_model
        return self.payload_models.model(self, queue, job_type)

    def lookup(self, queue: str, job_type: str) -> Handler | None:
        """The handler of a job type on a queue, if any."""
        return self.handlers.get((queue, job_type))

    @property
    def job_types(self) -> dict[str, set[str]]:
        """Queue -> the job types this app has handlers for (what its workers advertise)."""
        types: dict[str, set[str]] = {}
        for queue, job_type in self.handlers:
            types.setdefault(queue, set()).add(job_type)
        return types

    @property
    def handled_queues(self) -> list[str]:
        """The queues this app has handlers for, in the order of `queue_names`: what its workers serve by
        default."""
        return [name for name in self.queue_names if name in self.job_types]

    # --- connection ------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Reach Redis and check it. With none configured, the embedded server found or started as
        `embedded_mode` allows (see `conveyor.redis.discovery`)."""
        if self._client is not None:
            return
        self.target, self.embedded = resolve_target(self.settings, self.embedded_mode)
        client = self.target.client(name="conveyor")
        try:
            await ping_or_raise(client)
            self.health = await check_server(client)
        except BaseException:
            await client.aclose()
            raise
        self._client = client
        await self._apply_configured_limits()

    async def _apply_configured_limits(self) -> None:
        """Write the queue-wide limits this configuration sets, so they hold from the first producer or command
        that has it, not only once a worker starts; limits it does not set stay as Redis holds them."""
        for name, settings in self.queue_settings.items():
            if settings.rate_limit is not None or settings.global_concurrency is not None:
                await self.queue(name).apply_limits(settings.rate_limit, settings.global_concurrency)

    async def close(self) -> None:
        """Close connections. An embedded server this object started keeps running only if others use it."""
        if self._client is not None:
            close_lane(self._client)
            await self._client.aclose()
            self._client = None
        self._queues.clear()

    async def __aenter__(self) -> Conveyor:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def client(self) -> Redis:
        """The shared Redis client (after `connect`)."""
        if self._client is None:
            raise NotConnectedError()
        return self._client

    # --- queues ----------------------------------------------------------------------------------------

    @property
    def queue_names(self) -> list[str]:
        """Every configured queue: the standard three, then custom ones."""
        return list(self.queue_settings)

    def _check_queue(self, name: str) -> None:
        if name not in self.queue_settings:
            raise UnknownQueueError(name, self.queue_names)

    def queue(self, name: str) -> Queue:
        """The queue object for a configured queue name."""
        self._check_queue(name)
        if name not in self._queues:
            self._queues[name] = Queue(
                self.client,
                name,
                prefix=self.settings.conveyor_prefix,
                defaults=self.queue_settings[name],
                max_payload_bytes=self.settings.conveyor_max_payload_bytes,
                producer_hooks=self.producer_hooks,
                replica_wait=ReplicaWait.from_settings(self.settings),
            )
        return self._queues[name]

    def validate_payload(self, queue: str, job_type: str, data: Any) -> Any:
        """The payload as it will be stored: checked against the job type's model (`payload_model`) when there
        is one, whether or not this process runs its handler."""
        model = self.payload_model(queue, job_type)
        if model is None:
            return data
        try:
            return model.model_validate(data).model_dump(mode="json")
        except ValidationError as exc:
            fields = [".".join(str(p) for p in err["loc"]) or "(payload)" for err in exc.errors()]
            details = "; ".join(f"{f}: {err['msg']}" for f, err in zip(fields, exc.errors(), strict=True))
            raise InvalidPayloadError(
                f"Invalid payload for {queue}/{job_type} ({model.__name__}): {details}", fields
            ) from exc

    async def add(
        self,
        queue: str,
        job_type: str,
        data: Any = None,
        options: JobOptions | None = None,
        *,
        warn_unserved: bool = True,
        **option_fields: Any,
    ) -> str:
        """Enqueue a job and return its id. Options as a `JobOptions` or as keywords (`priority="high"`,
        `delay_ms=500`, `attempts=3`, `timeout_ms=…`, `deadline=…`, `job_id=…`).

        When no live worker advertises the job type on that queue, a WARNING is logged (at most once a minute
        per type; `warn_unserved=False`: not at all; `unserved_warning` gives the text). The job is added all
        the same: a worker may start later."""
        payload = self.validate_payload(queue, job_type, data)
        opts = self._delay_from_payload(queue, job_type, payload, options or job_options(**option_fields))
        job_id = await self.queue(queue).add(job_type, payload, opts)
        if warn_unserved:
            await self._log_if_unserved(queue, [job_type])
        return job_id

    async def add_bulk(self, queue: str, jobs: Sequence[NewJob], *, warn_unserved: bool = True) -> list[str]:
        """Enqueue many jobs at once; all are validated before any is written. Warns as `add` does."""
        checked = []
        for job in jobs:
            payload = self.validate_payload(queue, job.type, job.data)
            checked.append(NewJob(job.type, payload, self._delay_from_payload(queue, job.type, payload, job.options)))
        ids = await self.queue(queue).add_bulk(checked)
        if warn_unserved:
            await self._log_if_unserved(queue, [job.type for job in jobs])
        return ids

    def _delay_from_payload(self, queue: str, job_type: str, payload: Any, options: JobOptions) -> JobOptions:
        """A payload model may name a field (`DELAY_FIELD`) that delays its job, as the design note's
        `cleanup-temp-files` does with `data: {delay: 86400000}`; an explicit `delay_ms` option wins."""
        model = self.payload_model(queue, job_type)
        field_name = getattr(model, "DELAY_FIELD", None)
        delay = payload.get(field_name) if field_name and isinstance(payload, dict) else None
        if not isinstance(delay, int) or options.delay_ms:
            return options
        return options.model_copy(update={"delay_ms": delay})

    async def unserved_warning(self, queue: str, job_types: Collection[str]) -> str | None:
        """A warning when no live worker advertises some of `job_types` on `queue`, else None (also when Redis
        cannot tell). Reads the live workers at most once per `ADVERTISED_TTL_S`."""
        try:
            advertised = (await self._advertised_types()).get(queue, set())
        except CONNECTION_FAILURES:
            return None
        missing = sorted(set(job_types) - advertised)
        if not missing:
            return None
        names = ", ".join(repr(name) for name in missing)
        grace = self.settings.conveyor_unknown_type_grace_s
        return (
            f"No live worker handles job type {names} on queue {queue!r}; the job waits for a worker whose app has "
            f"a handler for it (check the type's spelling and the workers' --app). A worker of the queue without "
            f"one fails it with UnknownJobTypeError after {grace:g} s (CONVEYOR_UNKNOWN_TYPE_GRACE_S)."
        )

    async def _advertised_types(self) -> dict[str, set[str]]:
        now = time.monotonic()
        if self._advertised is None or now - self._advertised[0] >= ADVERTISED_TTL_S:
            self._advertised = (now, advertised_types(await self.workers(node=False)))
        return self._advertised[1]

    async def _log_if_unserved(self, queue: str, job_types: Collection[str]) -> None:
        now = time.monotonic()
        fresh = [t for t in set(job_types) if now - self._unserved_logged.get((queue, t), -1e9) >= UNSERVED_LOG_EVERY_S]
        warning = await self.unserved_warning(queue, fresh) if fresh else None
        if warning is not None:
            self._unserved_logged.update(dict.fromkeys(((queue, t) for t in fresh), now))
            log.warning(warning)

    # --- workers ---------------------------------------------------------------------------------------

    def worker(
        self,
        queues: Sequence[str] | None = None,
        concurrency: dict[str, int] | None = None,
        hooks: Sequence[WorkerHook] = (),
    ) -> Worker:
        """A worker for the given queues (default: those the app has handlers for, or all when it has none),
        with per-queue concurrency from the settings, plus the app's hooks (`app.hooks`) and any given here. It
        advertises the app's job types, so jobs of other types go to workers that have them."""
        names = list(queues or self.handled_queues or self.queue_names)
        for name in names:
            self._check_queue(name)
        overrides = concurrency or {}
        target = self.target
        if target is None:
            raise NotConnectedError()
        config = WorkerConfig(
            lock_ms=self.settings.conveyor_lock_duration_ms,
            stalled_interval_ms=self.settings.conveyor_stalled_interval_ms,
            heartbeat_s=self.settings.conveyor_heartbeat_s,
            eviction_check_s=self.settings.conveyor_eviction_check_s,
            shutdown_grace_s=self.settings.conveyor_shutdown_grace_s,
            unknown_type_grace_s=self.settings.conveyor_unknown_type_grace_s,
            group_limits=self.settings.conveyor_rate_limits,
        )
        return Worker(
            self.client,
            [(self.queue(n), overrides.get(n, self.queue_settings[n].concurrency)) for n in names],
            self.lookup,
            lambda name="conveyor-blocking": target.client(blocking=True, name=name),
            config,
            hooks=[*self.hooks, *hooks],
            job_types=self.job_types,
        )

    async def workers(self, *, node: bool = True) -> list[WorkerInfo]:
        """Every live worker process: Conveyor's, then (unless `node=False`) Node BullMQ workers of this Redis,
        marked `runtime="bullmq"` (found by their connection names, as BullMQ's `getWorkers` finds them)."""
        keys = self.queue(self.queue_names[0]).conveyor_keys
        own = await WorkerRegistry(self.client, keys, ttl_s=0).list()
        return own + (await node_workers(self.client, keys.prefix, time.time) if node else [])
