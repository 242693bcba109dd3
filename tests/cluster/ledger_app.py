"""A worker for the cluster fault tests: `python -m tests.cluster.ledger_app QUEUES CONCURRENCY`, against
REDIS_CLUSTER_NODES. Its `ledger` handler notes each start in the file TEST_LEDGER (outside Redis), one line
`<job id> <pid> <unix time>` per run, so a test can count lost and duplicated jobs without Redis' word."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

import uvloop

from conveyor import Conveyor, JobContext, load_settings
from tests.worker.sample_app import main, note_start


def create_app() -> Conveyor:
    app = Conveyor(load_settings())
    for queue in app.queue_names:

        @app.handler(queue, "ledger")
        async def ledger_job(payload: dict[str, Any], ctx: JobContext) -> int:
            note_start(ctx.job.id)
            await asyncio.sleep(float(payload.get("seconds", 0.0)))
            return os.getpid()

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s")
    uvloop.run(main(sys.argv[1].split(","), int(sys.argv[2]), create_app))
    os._exit(0)
