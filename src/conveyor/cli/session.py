"""A command's connection to Redis: connect, work, close, and stop an embedded server it started."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from conveyor.app import Conveyor


@asynccontextmanager
async def connected(app: Conveyor) -> AsyncIterator[Conveyor]:
    """Connect `app` for the duration of the block.

    With no Redis configured, the app attaches to the embedded server of the data dir, or starts one. A
    server started here is stopped at the end (SIGTERM: Redis writes its AOF, so jobs added by a one-shot
    command are there for the next `conveyor up`); an attached one is left running for its owner.
    """
    try:
        await app.connect()
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
