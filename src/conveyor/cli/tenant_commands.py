"""`conveyor tenant create|list|show|remove`: tenants and their quotas. The `--tenant` option other commands take
to act in a tenant's namespace is `conveyor.cli.options.TenantOption`, applied by `conveyor.cli.session.connected`.

Mount in `conveyor.cli.main`:

    cli.add_typer(tenant_commands.tenant_cli, name="tenant")
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from conveyor.app import Conveyor
from conveyor.cli.errors import RefusedError, UsageError, cli_command, run_async
from conveyor.cli.options import AppOption, JsonOption, open_app
from conveyor.cli.output import print_json, say, stdout, when
from conveyor.cli.session import check_tenant, connected
from conveyor.queue.errors import InvalidOptionsError
from conveyor.queue.tenants import Tenant, TenantQuotas, TenantStore, tenant_quotas

TenantArg = Annotated[str, typer.Argument(metavar="TENANT", help="Tenant id (lower-case letters, digits, '_', '-').")]

tenant_cli = typer.Typer(help="Tenants: namespaces of queues with quotas.", no_args_is_help=True)


def _store(app: Conveyor) -> TenantStore:
    return TenantStore(app.client, app.settings.conveyor_prefix)


def tenant_json(tenant: Tenant) -> dict[str, object]:
    """A tenant as JSON for `--json`."""
    return {
        "id": tenant.id,
        "prefix": tenant.prefix,
        "quotas": tenant.quotas.model_dump(mode="json"),
        "createdAt": tenant.created_at.isoformat(),
    }


def _table(tenants: list[Tenant]) -> Table:
    table = Table("Tenant", "Key prefix", "Max waiting", "Max payload", "Rate limit", "Created")
    for tenant in tenants:
        quotas, limit = tenant.quotas, tenant.quotas.rate_limit
        table.add_row(
            tenant.id,
            tenant.prefix,
            str(quotas.max_waiting_jobs) if quotas.max_waiting_jobs is not None else "-",
            f"{quotas.max_payload_bytes} B" if quotas.max_payload_bytes is not None else "-",
            f"{limit.max} / {limit.duration_ms} ms" if limit else "-",
            when(tenant.created_at),
        )
    return table


@tenant_cli.command("create")
@cli_command
def create(
    tenant: TenantArg,
    max_waiting: Annotated[int | None, typer.Option(min=0, help="Jobs waiting to run, across its queues.")] = None,
    max_payload: Annotated[int | None, typer.Option(min=1, help="Largest payload, in bytes.")] = None,
    rate: Annotated[int | None, typer.Option(min=1, help="Rate limit: at most this many jobs …")] = None,
    per_ms: Annotated[int, typer.Option(min=1, help="… per this many ms (with --rate).")] = 1000,
    as_json: JsonOption = False,
    app_spec: AppOption = None,
) -> None:
    """Create a tenant, or set the quotas of an existing one (unset quotas become unlimited)."""
    app = open_app(app_spec)
    check_tenant(tenant)
    try:
        quotas = tenant_quotas(
            max_waiting_jobs=max_waiting,
            max_payload_bytes=max_payload,
            rate_limit={"max": rate, "duration_ms": per_ms} if rate is not None else None,
        )
    except InvalidOptionsError as exc:
        raise UsageError(str(exc)) from exc
    saved = run_async(_save(app, tenant, quotas))
    if as_json:
        print_json(tenant_json(saved))
        return
    say(f"Tenant {tenant} saved; its queues live under {saved.prefix}:<queue>.")
    say(f"Give it a token with `conveyor token create --tenant {tenant}` (or createApiToken(tenant:) in the API).")


async def _save(app: Conveyor, tenant: str, quotas: TenantQuotas) -> Tenant:
    async with connected(app):
        return await _store(app).save(tenant, quotas)


@tenant_cli.command("list")
@cli_command
def list_tenants(as_json: JsonOption = False, app_spec: AppOption = None) -> None:
    """List tenants and their quotas."""
    app = open_app(app_spec)
    tenants = run_async(_all(app))
    if as_json:
        print_json([tenant_json(tenant) for tenant in tenants])
    elif not tenants:
        say("No tenants. Create one with `conveyor tenant create ID`.")
    else:
        stdout().print(_table(tenants))


async def _all(app: Conveyor) -> list[Tenant]:
    async with connected(app):
        return await _store(app).all()


@tenant_cli.command("show")
@cli_command
def show(tenant: TenantArg, as_json: JsonOption = False, app_spec: AppOption = None) -> None:
    """Show one tenant's quotas."""
    app = open_app(app_spec)
    found = run_async(_get(app, tenant))
    if as_json:
        print_json(tenant_json(found))
    else:
        stdout().print(_table([found]))


async def _get(app: Conveyor, tenant: str) -> Tenant:
    async with connected(app):
        return await _store(app).get(tenant)


@tenant_cli.command("remove")
@cli_command
def remove(tenant: TenantArg, app_spec: AppOption = None) -> None:
    """Remove a tenant: its API tokens stop working and its queues refuse new jobs. Its jobs and other keys stay
    in Redis until its queues are cleared."""
    app = open_app(app_spec)
    if not run_async(_remove(app, tenant)):
        raise RefusedError(f"No tenant {tenant!r}; nothing was removed.")
    say(f"Removed tenant {tenant}.")


async def _remove(app: Conveyor, tenant: str) -> bool:
    async with connected(app):
        return await _store(app).remove(tenant)
