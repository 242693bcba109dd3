"""The app `conveyor worker` runs in the failover tests: one handler that appends its job's id to a ledger file
outside Redis (`FAILOVER_LEDGER`), so runs are counted whatever Redis loses."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from conveyor import Conveyor, JobContext, Settings

QUEUE = "failover"


def create_app(settings: Settings | None = None) -> Conveyor:
    app = Conveyor(settings)
    ledger = os.environ["FAILOVER_LEDGER"]

    @app.handler(QUEUE, "record")
    async def record(payload: Any, ctx: JobContext) -> str:
        await asyncio.sleep(0.002)
        # One O_APPEND write per line: lines from concurrent processes never interleave.
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{ctx.job.id}\t{time.time():.4f}\n".encode())
        finally:
            os.close(fd)
        return "ok"

    return app
