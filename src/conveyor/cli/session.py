"""A command's connection to Redis: connect, work, close, and stop an embedded server it started."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conveyor.app import Conveyor
from conveyor.cli.output import stderr

log = logging.getLogger(__name__)


@asynccontextmanager
async def connected(app: Conveyor) -> AsyncIterator[Conveyor]:
    """Connect `app` for the duration of the block.

    With no Redis configured, the app finds the embedded server as its `embedded_mode` allows (one-shot
    commands only attach; see `conveyor.redis.discovery`). A server started here is stopped at the end
    (SIGTERM: Redis writes its AOF); an attached one is left running for its owner. With `-v`, a line on
    stderr says which Redis the command talks to.
    """
    try:
        await app.connect()
        if log.isEnabledFor(logging.DEBUG):
            stderr().print(f"Conveyor: Redis {describe_redis(app)}", soft_wrap=True, markup=False)
        yield app
    finally:
        await app.close()
        if app.embedded is not None:
            app.embedded.stop()  # a no-op unless this process started it


def describe_redis(app: Conveyor) -> str:
    """Where the connected app's Redis is, password masked, and who runs it."""
    target = app.target.describe() if app.target is not None else "(not connected)"
    server = app.embedded
    if server is None:
        return f"{target} (configured)"
    if server.owner:
        return f"{target} (embedded, pid {server.pid}, started by this process; data in {server.data_dir})"
    return f"{target} (embedded, pid {server.pid}, attached; data in {server.data_dir})"
