"""The `Conveyor` object: settings, the standard and configured queues, and the handler registry."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
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
from conveyor.redis.lane import close_lane
from conveyor.worker.batching import Batch
from conveyor.worker.handler import Handler
from conveyor.worker.hooks import WorkerHook
from conveyor.worker.registry import WorkerInfo, WorkerRegistry
from conveyor.worker.sandbox import Sandbox, importable_name
from conveyor.worker.worker import Worker, WorkerConfig

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


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
        self, queue: str, job_type: str, data: Any = None, options: JobOptions | None = None, **option_fields: Any
    ) -> str:
        """Enqueue a job and return its id. Options as a `JobOptions` or as keywords (`priority="high"`,
        `delay_ms=500`, `attempts=3`, `timeout_ms=…`, `deadline=…`, `job_id=…`)."""
        opts = options or job_options(**option_fields)
        return await self.queue(queue).add(job_type, self.validate_payload(queue, job_type, data), opts)

    async def add_bulk(self, queue: str, jobs: Sequence[NewJob]) -> list[str]:
        """Enqueue many jobs at once; all are validated before any is written."""
        checked = [NewJob(j.type, self.validate_payload(queue, j.type, j.data), j.options) for j in jobs]
        return await self.queue(queue).add_bulk(checked)

    # --- workers ---------------------------------------------------------------------------------------

    def worker(
        self,
        queues: Sequence[str] | None = None,
        concurrency: dict[str, int] | None = None,
        hooks: Sequence[WorkerHook] = (),
    ) -> Worker:
        """A worker for the given queues (default: all), with per-queue concurrency from the settings, plus
        the app's hooks (`app.hooks`) and any given here."""
        names = list(queues or self.queue_names)
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
            group_limits=self.settings.conveyor_rate_limits,
        )
        return Worker(
            self.client,
            [(self.queue(n), overrides.get(n, self.queue_settings[n].concurrency)) for n in names],
            self.lookup,
            lambda: target.client(blocking=True, name="conveyor-blocking"),
            config,
            hooks=[*self.hooks, *hooks],
        )

    async def workers(self) -> list[WorkerInfo]:
        """Every live worker process."""
        registry = WorkerRegistry(self.client, self.queue(self.queue_names[0]).conveyor_keys, ttl_s=0)
        return await registry.list()
