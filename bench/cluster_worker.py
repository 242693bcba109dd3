"""A benchmark worker on a Redis Cluster: `python -m bench.cluster_worker QUEUES CONCURRENCY` with
REDIS_CLUSTER_NODES set. Runs no-op jobs of type `job` on every queue given; prints `ready` once serving."""

from __future__ import annotations

import asyncio
import sys
from typing import Any


async def run(queues: list[str], concurrency: int) -> None:
    from conveyor import Conveyor, load_settings

    settings = load_settings(conveyor_queues={queue: {"concurrency": concurrency} for queue in queues})
    app = Conveyor(settings)

    async def noop(_: Any) -> None:
        return None

    for queue in queues:
        app.handler(queue, "job")(noop)
    async with app:
        worker = app.worker(queues)
        worker.install_signal_handlers()
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)
        print("ready", flush=True)
        await task


def main() -> None:
    import uvloop

    uvloop.run(run(sys.argv[1].split(","), int(sys.argv[2])))


if __name__ == "__main__":
    main()
