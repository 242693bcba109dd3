"""A command's connection to Redis: connect, work, close, and stop an embedded server it started."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conveyor.app import Conveyor
from conveyor.app.tenants import TenantConveyor
from conveyor.cli.errors import UsageError
from conveyor.cli.output import stderr
from conveyor.queue.tenants import TenantError, TenantStore, UnknownTenantError, check_tenant_id

log = logging.getLogger(__name__)


@asynccontextmanager
async def connected(app: Conveyor, tenant: str | None = None) -> AsyncIterator[Conveyor]:
    """Connect `app` for the duration of the block; yields the app, or with `tenant` that tenant's view of it.

    With no Redis configured, the app finds the embedded server as its `embedded_mode` allows (one-shot
    commands only attach; see `conveyor.redis.discovery`). A server started here is stopped at the end
    (SIGTERM: Redis writes its AOF); an attached one is left running for its owner. With `-v`, a line on
    stderr says which Redis (and tenant) the command talks to.

    Raises:
        UsageError: `tenant` is not a valid tenant id, or no such tenant exists (checked before the block).
    """
    check_tenant(tenant)
    try:
        await app.connect()
        if log.isEnabledFor(logging.DEBUG):
            where = f"; tenant {tenant}" if tenant else ""
            stderr().print(f"Conveyor: Redis {describe_redis(app)}{where}", soft_wrap=True, markup=False)
        yield app if tenant is None else await tenant_view(app, tenant)
    finally:
        await app.close()
        if app.embedded is not None:
            app.embedded.stop()  # a no-op unless this process started it


def check_tenant(tenant: str | None) -> str | None:
    """Validate a `--tenant` value before touching Redis; a bad one is a usage error."""
    try:
        return check_tenant_id(tenant) if tenant is not None else None
    except TenantError as exc:
        raise UsageError(str(exc)) from exc


async def tenant_view(app: Conveyor, tenant: str) -> TenantConveyor:
    """The connected app as seen by an existing tenant; an unknown tenant is a usage error."""
    try:
        await TenantStore(app.client, app.settings.conveyor_prefix).get(tenant)
    except UnknownTenantError as exc:
        raise UsageError(f"{exc} (`conveyor tenant list` shows the tenants).") from exc
    return TenantConveyor(app, tenant)


def describe_redis(app: Conveyor) -> str:
    """Where the connected app's Redis is, password masked, and who runs it."""
    target = app.target.describe() if app.target is not None else "(not connected)"
    server = app.embedded
    if server is None:
        return f"{target} (configured)"
    if server.owner:
        return f"{target} (embedded, pid {server.pid}, started by this process; data in {server.data_dir})"
    return f"{target} (embedded, pid {server.pid}, attached; data in {server.data_dir})"
