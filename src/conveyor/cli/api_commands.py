"""`conveyor serve` (the GraphQL API and dashboard) and `conveyor token` (API tokens)."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer

from conveyor.api.config import load_api_config
from conveyor.api.tokens import Role, TokenInfo, TokenStore
from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, cli_command, run_async
from conveyor.cli.options import AppOption, HostOption, JsonOption, PortOption, TenantOption, open_app
from conveyor.cli.output import print_json, say
from conveyor.cli.session import check_tenant, connected, describe_redis
from conveyor.config import ConfigError
from conveyor.observability import instrument

tokens_cli = typer.Typer(help="Create, list and revoke API tokens (roles: viewer, operator, admin).")


def check_api_port(app: Conveyor, host: str | None = None, port: int | None = None) -> None:
    """Fail in one line, before anything starts, when the API's address is taken (e.g. by another `up`)."""
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    config = load_api_config(app.settings, **overrides)
    if not config.port:
        return  # any free port
    with socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((config.host, config.port))
        except OSError as exc:
            raise ConfigError(
                f"Cannot serve the API on {config.host}:{config.port} ({exc.strerror}): is another `conveyor up` "
                "running? Pass --port (or set CONVEYOR_API_PORT)."
            ) from None


def api_service(host: str | None = None, port: int | None = None) -> Callable[[Conveyor], Coroutine[Any, Any, None]]:
    """The API server as a service of `conveyor up`: `await service(app)` serves until cancelled (the worker
    owns the signals).

    The server's stack is imported here, when the service is made, before the worker starts: imported by the
    running service, it held the worker's event loop (about 0.7 s, seconds on a busy machine) right after the
    worker had announced itself, so its heartbeats stopped and it could drop out of the live worker list."""
    from conveyor.api.server import serve as serve_api  # the server's stack only where one runs

    async def service(app: Conveyor) -> None:
        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        config = load_api_config(app.settings, **overrides)
        say(f"API: http://{config.host}:{config.port}/graphql, dashboard at http://{config.host}:{config.port}/")
        await serve_api(app, config, handle_signals=False)

    return service


@cli_command
def serve(host: HostOption = None, port: PortOption = None, app_spec: AppOption = None) -> None:
    """Run the GraphQL API (and the dashboard) without a worker."""
    app = open_app(app_spec)
    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    config = load_api_config(app.settings, **overrides)

    async def body() -> None:
        from conveyor.api.server import serve as serve_api  # the server's stack only where one runs

        # This process owns SIGTERM/SIGINT (uvicorn's own handling re-raises the signal after its shutdown,
        # which would end the process with a signal status instead of 0).
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with connected(app):
            instrument(app)
            say(f"Conveyor API on http://{config.host}:{config.port}/graphql (Redis: {describe_redis(app)})")
            server = asyncio.create_task(serve_api(app, config, handle_signals=False))
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({server, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)

    run_async(body())


@tokens_cli.command("create")
@cli_command
def create_token(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the token.")],
    role: Annotated[Role, typer.Option("--role", help="viewer, operator or admin.")] = Role.VIEWER,
    queue: Annotated[
        list[str] | None, typer.Option("--queue", help="Limit the token to this queue (repeatable).")
    ] = None,
    tenant: TenantOption = None,
    app_spec: AppOption = None,
) -> None:
    """Create a token and print it (the only time its secret is shown)."""
    app = open_app(app_spec, *(queue or []))
    check_tenant(tenant)

    async def body() -> str:
        async with connected(app, tenant):
            issued = await TokenStore(app.client, app.settings.conveyor_prefix).create(
                name, role, queue or None, known_queues=app.queue_names, tenant=tenant
            )
            return issued.token

    say(run_async(body()))


@tokens_cli.command("list")
@cli_command
def list_tokens(json_output: JsonOption = False, tenant: TenantOption = None, app_spec: AppOption = None) -> None:
    """List tokens (ids, names, roles, queue scopes; never secrets); with --tenant, only that tenant's."""
    app = open_app(app_spec)
    check_tenant(tenant)

    async def body() -> list[TokenInfo]:
        async with connected(app, tenant):
            infos = await TokenStore(app.client, app.settings.conveyor_prefix).list()
            return [info for info in infos if tenant is None or info.tenant == tenant]

    infos = run_async(body())
    if json_output:
        print_json(infos)
        return
    for info in infos:
        scope = f"tenant {info.tenant}: " if info.tenant else ""
        say(f"{info.id}  {info.name}  {info.role}  {scope}{','.join(info.queues or []) or 'all queues'}")


@tokens_cli.command("revoke")
@cli_command
def revoke_token(token_id: Annotated[str, typer.Argument(metavar="ID")], app_spec: AppOption = None) -> None:
    """Revoke a token by id (or by the full token)."""
    app = open_app(app_spec)

    async def body() -> bool:
        async with connected(app):
            return await TokenStore(app.client, app.settings.conveyor_prefix).revoke(token_id)

    if not run_async(body()):
        raise RefusedError(f"No token {token_id!r} (see `conveyor token list`).")
    say(f"revoked {token_id}")
