"""The ASGI application (Starlette) and its uvicorn server.

`create_api(app, config)` builds the app: `/graphql` (HTTP POST and graphql-transport-ws), `/healthz`
(the process is up), `/readyz` (Redis answers, its eviction policy is `noeviction`, workers are alive) and
`/metrics` (Prometheus; a token without queue scope unless `metrics_public`).
`serve(app, config)` runs it with uvicorn until SIGINT/SIGTERM; `ApiServer` does the same under the
caller's control (stop it with `request_stop()`), e.g. beside a worker in `conveyor up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.auth import authenticate, bearer_token
from conveyor.api.config import ApiConfig
from conveyor.api.context import ApiState
from conveyor.api.errors import REDIS_DOWN, REDIS_MESSAGE, ErrorCode
from conveyor.api.schema import build_schema
from conveyor.api.tokens import TokenStore
from conveyor.api.view import ConveyorGraphQL, refusal
from conveyor.app import Conveyor
from conveyor.config import ConfigError
from conveyor.observability import metrics_asgi_app
from conveyor.queue.events import EventHub

log = logging.getLogger(__name__)


class ApiStartError(ConfigError):
    """The API server could not start, e.g. its address cannot be bound; nothing is served."""


class BodyLimit:
    """Refuse HTTP bodies over `max_bytes` with 413 before the GraphQL view reads them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                response = refusal(
                    413, ErrorCode.REQUEST_TOO_LARGE, f"The request body exceeds {self.max_bytes} bytes."
                )
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def readiness(state: ApiState) -> tuple[bool, dict[str, Any]]:
    """Whether the server can serve: Redis answers, evicts nothing, and (if required) workers are alive."""
    app, config = state.app, state.config
    report: dict[str, Any] = {"redis": "down"}
    try:
        await app.client.ping()
        policy = (await app.client.info("memory")).get("maxmemory_policy")
        workers = len(await app.workers(node=False))  # Conveyor workers: they run the handlers this app has
    except (RedisError, OSError) as exc:
        report["reason"] = f"Redis is unreachable ({type(exc).__name__})"
        return False, report
    report.update(redis="ok", evictionPolicy=policy, workers=workers)
    problems = []
    if policy is not None and policy != "noeviction":
        problems.append(f"Redis maxmemory-policy is {policy!r}; jobs can be evicted (set noeviction)")
    if config.ready_requires_workers and workers == 0:
        problems.append("no live worker")
    if problems:
        report["reason"] = "; ".join(problems)
    return not problems, report


def create_api(app: Conveyor, config: ApiConfig | None = None) -> Starlette:
    """The ASGI application serving `app`'s queues. Its lifespan connects the app (if needed) and starts the
    shared event reader; run it with uvicorn (see `serve`)."""
    config = config or ApiConfig()
    state = ApiState(app, config)
    graphql = ConveyorGraphQL(build_schema(config), state)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        ready, report = await readiness(state)
        return JSONResponse({"ready": ready, **report}, status_code=200 if ready else 503)

    middleware = [Middleware(BodyLimit, max_bytes=config.max_request_bytes)]
    if config.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(config.cors_origins),
                allow_methods=["POST"],
                allow_headers=["authorization", "content-type"],
            )
        )
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        Route("/metrics", MetricsEndpoint(metrics_asgi_app(app), state), methods=["GET", "HEAD"]),
        *_dashboard_routes(),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=_lifespan(state))


class MetricsEndpoint:
    """`/metrics` (an ASGI app, so Starlette does not take it for a request handler): it names every queue and
    worker, so it needs a valid token without queue scope or tenant, unless `metrics_public` opens it."""

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = None if self.state.config.metrics_public else await self._refusal(Request(scope, receive))
        await (refused or self.app)(scope, receive, send)

    async def _refusal(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        token = bearer_token(header)
        host = request.client.host if request.client is not None else None
        anonymous = self.state.config.anonymous_loopback and header is None
        try:
            principal = await authenticate(self.state.started()[1], token, host, anonymous_loopback=anonymous)
        except REDIS_DOWN:
            return refusal(503, ErrorCode.REDIS_UNAVAILABLE, f"{REDIS_MESSAGE} (The token cannot be checked.)")
        if principal is None:
            message = "Invalid or revoked API token." if token else "Send `Authorization: Bearer <token>` to scrape."
            return refusal(401, ErrorCode.UNAUTHENTICATED, message)
        if principal.queues is not None or principal.tenant is not None:
            return refusal(
                403, ErrorCode.FORBIDDEN, "/metrics shows every queue: use a token without queue scope or tenant."
            )
        return None


def _dashboard_routes() -> list[BaseRoute]:
    """The web dashboard at `/`, unless its package is absent or CONVEYOR_DASHBOARD_ENABLED is false."""
    try:
        from conveyor.dashboard import dashboard_routes
    except ImportError:
        return []
    return dashboard_routes()


def _lifespan(state: ApiState) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        app = state.app
        await app.connect()
        target = app.target
        assert target is not None  # set by connect()
        prefix = app.settings.conveyor_prefix
        state.hub = EventHub(app.client, lambda: target.client(blocking=True, name="conveyor-api-events"), prefix)
        state.tokens = TokenStore(app.client, prefix)
        if not state.config.anonymous_loopback and not await state.tokens.list():
            log.warning("no API token exists: every request will be refused; create one with `conveyor token create`")
        try:
            yield
        finally:
            await state.hub.close()
            await state.tenants.close()

    return lifespan


class _Server(uvicorn.Server):
    """uvicorn's server, optionally leaving signal handling to the caller."""

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool) -> None:
        super().__init__(config)
        self.handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self.handle_signals:
            with super().capture_signals():
                yield
        else:
            yield


class ApiServer:
    """The API served by uvicorn in the current event loop.

    Args:
        app: the Conveyor application (connected by the server's startup if it is not yet).
        config: host, port, limits, mode.
        sock: an already bound socket to serve on instead of `config.host`/`config.port`.
        handle_signals: True to stop on SIGINT/SIGTERM; False when the caller stops it with `request_stop()`.
    """

    def __init__(
        self, app: Conveyor, config: ApiConfig, *, sock: socket.socket | None = None, handle_signals: bool = True
    ) -> None:
        self.config = config
        self.sock = sock
        uv_config = uvicorn.Config(
            create_api(app, config),
            host=config.host,
            port=config.port,
            lifespan="on",
            log_config=None,
            ws="websockets-sansio",
            ws_max_size=config.max_request_bytes,
            timeout_graceful_shutdown=config.shutdown_grace_s,
            server_header=False,
        )
        self._server = _Server(uv_config, handle_signals=handle_signals)

    @property
    def started(self) -> bool:
        """True once the server accepts connections."""
        return bool(self._server.started)

    @property
    def port(self) -> int:
        """The port it listens on (useful with port 0)."""
        if self.sock is not None:
            return int(self.sock.getsockname()[1])
        for server in self._server.servers:
            for listener in server.sockets:
                return int(listener.getsockname()[1])
        return self.config.port

    async def serve(self) -> None:
        """Serve until stopped.

        Raises:
            ApiStartError: the server could not start (its port could not be bound, or its startup failed).
        """
        if self.config.anonymous_loopback:
            log.warning("anonymous admin access from loopback is on (development mode); never expose this server")
        try:
            await self._server.serve(sockets=[self.sock] if self.sock is not None else None)
        except SystemExit:
            # uvicorn logs why and exits the process; an error instead lets the caller stop what it started.
            raise ApiStartError(
                f"The API server could not start on {self.config.host}:{self.config.port} (the reason is logged "
                "above); pass --host/--port or set CONVEYOR_API_HOST/CONVEYOR_API_PORT."
            ) from None

    def request_stop(self) -> None:
        """Begin a graceful shutdown (open websockets are closed after `shutdown_grace_s`)."""
        self._server.should_exit = True

    async def wait_started(self, within_s: float = 10.0) -> None:
        """Wait until the server accepts connections (TimeoutError after `within_s`)."""
        deadline = asyncio.get_running_loop().time() + within_s
        while not self._server.started:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the API server did not start")
            await asyncio.sleep(0.01)


async def serve(app: Conveyor, config: ApiConfig, *, handle_signals: bool = True) -> None:
    """Serve the API on `config.host:config.port` until SIGINT/SIGTERM (with `handle_signals`) or until the
    task running it is cancelled; either way it shuts down gracefully (open websockets get
    `config.shutdown_grace_s`) before returning or re-raising the cancellation.

    Use `handle_signals=False` when something else in the process owns the signals (a worker in `conveyor up`):
    then cancel the task to stop the server.
    """
    server = ApiServer(app, config, handle_signals=handle_signals)
    log.info("GraphQL API on http://%s:%d/graphql", config.host, config.port)
    task = asyncio.ensure_future(server.serve())
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.request_stop()
        await task
        raise
