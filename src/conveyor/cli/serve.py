"""`conveyor up` and `conveyor worker`: run workers (in this process, or N supervised processes)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any, cast

import typer

from conveyor import observability
from conveyor.app import Conveyor
from conveyor.cli.errors import cli_command, run_async
from conveyor.cli.options import (
    AppOption,
    HostOption,
    PortOption,
    TenantOption,
    open_app,
    parse_concurrency,
    parse_queue_list,
)
from conveyor.cli.output import say
from conveyor.cli.session import check_tenant, connected, describe_redis, tenant_view
from conveyor.observability import instrument
from conveyor.redis.discovery import EmbeddedMode
from conveyor.worker.supervisor import STOP_SIGNALS, Supervisor, SupervisorConfig
from conveyor.worker.worker import Worker

log = logging.getLogger(__name__)

# Time a supervised worker gets beyond its own shutdown grace period before it is killed.
STOP_MARGIN_S = 15.0
THREAD_EXIT_WAIT_S = 1.0

Service = Callable[[Conveyor], Coroutine[Any, Any, None]]
Banner = Callable[[Conveyor, str], None]
ProcessesOption = Annotated[
    int, typer.Option("--processes", "-p", min=1, help="Worker processes; more than 1 runs them supervised.")
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option("--metrics-port", min=1, max=65535, help="Serve this worker process's Prometheus metrics here."),
]


def up_services(app: Conveyor, host: str | None = None, port: int | None = None) -> list[Service]:
    """What `conveyor up` runs beside its worker, each as `await service(app)` until cancelled at shutdown:
    the GraphQL API server (and the dashboard it serves)."""
    from conveyor.cli.api_commands import api_service  # the API stack: only `up` needs it, never a worker

    return [api_service(host, port)]


@cli_command
def up(
    processes: ProcessesOption = 1,
    metrics_port: MetricsPortOption = None,
    host: HostOption = None,
    port: PortOption = None,
    app_spec: AppOption = None,
) -> None:
    """Run Conveyor: Redis (embedded when none is configured) and a worker for every queue the app handles.

    The embedded Redis is attached to if one already runs in the data dir (or in a `.conveyor` of a folder
    above), else started in the data dir. Ctrl-C or SIGTERM stops the worker gracefully, then the Redis this
    process started.
    """
    from conveyor.cli.api_commands import check_api_port

    app = open_app(app_spec, embedded=EmbeddedMode.PROJECT)
    check_api_port(app, host, port)  # before Redis or a worker starts: nothing to clean up
    services = up_services(app, host, port)
    if processes > 1:
        options = _child_options(app_spec, None, [], None)
        raise typer.Exit(_supervise(app, processes, options, banner=_up_banner, services=services))
    _run_in_process(app, None, {}, banner=_up_banner, services=services, metrics_port=metrics_port)


@cli_command
def worker(
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues", "-q", help="Queues to serve, comma-separated. Default: those the app has handlers for."
        ),
    ] = None,
    concurrency: Annotated[
        list[str] | None,
        typer.Option(
            "--concurrency", "-c", metavar="QUEUE=N", help="Jobs at once per queue (repeatable; N alone: all)."
        ),
    ] = None,
    processes: ProcessesOption = 1,
    metrics_port: MetricsPortOption = None,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Run a worker (no API server); with --tenant, for that tenant's queues only.

    With no Redis configured it attaches to the running embedded server of `conveyor up` (in the data dir, a
    `.conveyor` of a folder above, or the only one in the user registry), or starts one in the data dir.
    SIGTERM / Ctrl-C: active jobs finish within the grace period, the rest go back to waiting.
    """
    app = open_app(app_spec, embedded=EmbeddedMode.SHARE)
    check_tenant(tenant)
    names = parse_queue_list(queues, app)
    overrides = parse_concurrency(concurrency or [], names or app.handled_queues or app.queue_names)
    if processes > 1:
        child = _child_options(app_spec, queues, concurrency or [], tenant)
        raise typer.Exit(_supervise(app, processes, child, banner=_worker_banner, tenant=tenant))
    _run_in_process(app, names, overrides, banner=_worker_banner, metrics_port=metrics_port, tenant=tenant)


# --- one worker in this process ------------------------------------------------------------------------


def _run_in_process(
    app: Conveyor,
    queues: Sequence[str] | None,
    concurrency: dict[str, int],
    *,
    banner: Banner,
    services: Sequence[Service] = (),
    metrics_port: int | None = None,
    tenant: str | None = None,
) -> None:
    _log_at_info()
    run_async(_serve(app, queues, concurrency, banner, services, metrics_port, tenant))
    _exit_if_handler_threads_stuck()


async def _serve(
    app: Conveyor,
    queues: Sequence[str] | None,
    concurrency: dict[str, int],
    banner: Banner,
    services: Sequence[Service],
    metrics_port: int | None,
    tenant: str | None = None,
) -> None:
    # A stop signal that arrives while Redis is being reached (or started) must not kill the process with
    # an embedded server left running: remember it, and stop the worker as soon as it exists.
    early_stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        asyncio.get_running_loop().add_signal_handler(sig, early_stop.set)
    async with connected(app, tenant) as view:  # a Redis started here is stopped after the worker
        observed = instrument(app)
        metrics = observability.enable_worker_metrics(app, metrics_port) if metrics_port else None
        runner = view.worker(queues, concurrency)
        runner.install_signal_handlers()
        if early_stop.is_set():
            runner.request_stop()
        # What exists now (modules, the app, its settings) lives as long as the process: keep it out of the
        # collector's full passes, which would otherwise walk all of it every few thousand jobs.
        gc.freeze()
        run = asyncio.create_task(runner.run(), name="conveyor-worker")
        tasks: list[asyncio.Task[None]] = []
        try:
            if await _serving_or_ended(runner, run):  # the banner says "serving" only once producers can see it
                banner(app, _serving(runner, tenant))
                tasks = [asyncio.create_task(service(app)) for service in services]
                for task in tasks:  # a service that ends (the API could not bind its port) stops the worker too
                    task.add_done_callback(lambda _: runner.request_stop())
            await run
        finally:
            for task in [run, *tasks]:
                task.cancel()
            await asyncio.gather(run, *tasks, return_exceptions=True)
            await observed.aclose()
            if metrics is not None:
                metrics.close()
        _raise_if_failed(tasks)  # after the worker stopped; `connected` then stops a Redis started here


async def _serving_or_ended(worker: Worker, run: asyncio.Task[None]) -> bool:
    """Wait until the worker serves (its first heartbeat is in Redis) or its run ended first (e.g. it refused a
    queue); True if it serves."""
    serving = asyncio.create_task(worker.serving.wait())
    await asyncio.wait([serving, run], return_when=asyncio.FIRST_COMPLETED)
    serving.cancel()
    return worker.serving.is_set()


def _raise_if_failed(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Re-raise the error of the first service that failed (not one cancelled at shutdown)."""
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            raise cast(BaseException, task.exception())


def _exit_if_handler_threads_stuck() -> None:
    # Sync handlers run in the worker's thread pool. The worker waits for one still running after the grace
    # period unless stopped a second time; then its job is left to the stalled-job check, but Python cannot
    # kill a thread, and at exit the interpreter joins every pool thread: the process would hang until that
    # handler returns. Nothing is left to save (the embedded server is stopped), so end the process now.
    deadline = time.monotonic() + THREAD_EXIT_WAIT_S  # idle pool threads are only just leaving
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive() and not t.daemon]
    if stuck:
        log.warning(
            "exiting with %d job handler thread(s) still running (the stalled-job check requeues their jobs)",
            len(stuck),
        )
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# --- N supervised worker processes ---------------------------------------------------------------------


def _child_options(
    app_spec: str | None, queues: str | None, concurrency: Sequence[str], tenant: str | None
) -> list[str]:
    options = ["--app", app_spec] if app_spec else []
    if tenant:
        options += ["--tenant", tenant]
    if queues:
        options += ["--queues", queues]
    for value in concurrency:
        options += ["--concurrency", value]
    return options


def _supervise(
    app: Conveyor,
    processes: int,
    child_options: list[str],
    *,
    banner: Banner,
    services: Sequence[Service] = (),
    tenant: str | None = None,
) -> int:
    """Run `processes` copies of `conveyor worker --processes 1 ...`; returns the supervisor's exit code.

    Redis is reached (the embedded server started) here first: a Redis that is down fails fast with exit code
    3 instead of N restarting children, and the children attach to the embedded server this process owns.
    `services` (the API server of `conveyor up`) run beside the supervisor, in a thread with its own event loop.
    """
    run_async(_check_redis(app, tenant))
    owned = app.embedded  # the services reconnect the app (attaching): keep the handle that owns the server
    beside: _ServiceThread | None = None
    try:
        banner(app, f"{processes} worker processes")
        command = [sys.executable, "-m", "conveyor", "worker", "--processes", "1", *child_options]
        config = SupervisorConfig(processes, stop_timeout_s=app.settings.conveyor_shutdown_grace_s + STOP_MARGIN_S)
        # The children use the embedded server found (or started) here, whatever their own search would find.
        env = {**os.environ, "CONVEYOR_DATA_DIR": str(owned.data_dir)} if owned is not None else None
        supervisor = Supervisor(command, config, env=env)
        supervisor.install_signal_handlers()
        if services:  # a service that fails (the API could not bind its port) stops the workers too
            beside = _ServiceThread(app, services, on_failure=supervisor.request_stop)
            beside.start()
        code = supervisor.run()
        if beside is not None and beside.error is not None:
            raise beside.error
        return code
    finally:
        try:
            if beside is not None:
                beside.stop()
        finally:
            if owned is not None:
                owned.stop()  # only if this process started it, after every child has stopped


class _ServiceThread:
    """Services (coroutines run until cancelled) in a thread of their own, beside the synchronous supervisor."""

    def __init__(self, app: Conveyor, services: Sequence[Service], on_failure: Callable[[], None]) -> None:
        self.app = app
        self.services = services
        self.on_failure = on_failure
        self.error: Exception | None = None  # what a failed service raised
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future[Any] | None = None
        self._thread = threading.Thread(target=self._run, name="conveyor-services", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.gather(*(service(self.app) for service in self.services))
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as exc:
                self.error = exc
                self.on_failure()
            finally:
                await self.app.close()

        run_async(main())

    def stop(self) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the services have ended
                self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=15)


async def _check_redis(app: Conveyor, tenant: str | None) -> None:
    # Not `connected`: a server started here must outlive the check (the children attach to it).
    try:
        await app.connect()
        if tenant is not None:
            await tenant_view(app, tenant)  # an unknown tenant fails here, not in N restarting children
    except BaseException:
        if app.embedded is not None:
            app.embedded.stop()
        raise
    finally:
        await app.close()


# --- what the commands print ---------------------------------------------------------------------------


def _serving(runner: Worker, tenant: str | None = None) -> str:
    queues = ", ".join(f"{r.queue.name} ({r.config.concurrency})" for r in runner.runners)
    return f"worker {runner.name} serving {f'tenant {tenant}: ' if tenant else ''}{queues}"


def _worker_banner(app: Conveyor, serving: str) -> None:
    say(f"Conveyor {serving}")
    say(f"Redis: {describe_redis(app)}")
    grace = app.settings.conveyor_shutdown_grace_s
    say(f"Stop with Ctrl-C or `kill -TERM {os.getpid()}` (active jobs get {grace:g} s to finish).")


def _up_banner(app: Conveyor, serving: str) -> None:
    say("Conveyor is up", style="bold green")
    _worker_banner(app, serving)


def _log_at_info() -> None:
    # A running worker reports its lifecycle (start, stalled jobs, shutdown) unless CONVEYOR_LOG_LEVEL says
    # otherwise; one-shot commands stay quiet.
    root = logging.getLogger()
    if "CONVEYOR_LOG_LEVEL" not in os.environ and root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
