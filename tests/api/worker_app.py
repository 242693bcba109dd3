"""A small app whose workers run in another process for the API tests:
`python -m tests.api.worker_app QUEUES` (REDIS_URL from the environment).

Handlers: `steps` reports progress and a log line per step, `fail` raises, `sleep` sleeps.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from pydantic import BaseModel

from conveyor import Conveyor, JobContext, load_settings


class IndexFile(BaseModel):
    filePath: str  # noqa: N815 - the design's field name


def register_handlers(app: Conveyor) -> Conveyor:
    """Register the test handlers on an app (also used in-process by the tests)."""

    @app.handler("indexing", "index-file", payload=IndexFile)
    async def index_file(payload: IndexFile) -> dict[str, str]:
        return {"indexed": payload.filePath}

    for queue in app.queue_names:

        @app.handler(queue, "steps")
        async def steps(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
            count = int(payload.get("steps", 3))
            for step in range(1, count + 1):
                await asyncio.sleep(float(payload.get("pause", 0.2)))
                ctx.log(f"step {step}")
                ctx.progress(round(step * 100 / count))
            return {"steps": count}

        @app.handler(queue, "fail")
        async def fail(payload: dict[str, Any]) -> None:
            raise RuntimeError(str(payload.get("reason", "boom")))

        @app.handler(queue, "sleep")
        async def sleep(payload: dict[str, Any]) -> None:
            await asyncio.sleep(float(payload.get("seconds", 0.5)))

        @app.handler(queue, "ok")
        def ok(payload: dict[str, Any]) -> Any:
            return payload.get("result", "done")

    return app


async def main(queues: list[str]) -> None:
    app = register_handlers(Conveyor(load_settings()))
    async with app:
        worker = app.worker(queues)
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1].split(",")))
    os._exit(0)
