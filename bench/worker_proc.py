"""A benchmark worker process: `python -m bench.worker_proc IMPL QUEUE CONCURRENCY HANDLER`.

IMPL is `conveyor` (our runtime) or `stock` (the `bullmq` package's Worker, as its users run it). HANDLER is
`noop`, `start` (returns its start time, for pickup latency) or `ioN` (awaits N ms, like an I/O-bound job).
Prints `ready` once serving, and stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


def make_handler(kind: str) -> Callable[[Any], Awaitable[Any]]:
    """The job body for a benchmark."""
    if kind == "start":

        async def started(_: Any) -> float:
            return time.time()

        return started
    if kind.startswith("io"):
        seconds = int(kind[2:]) / 1000

        async def io(_: Any) -> None:
            await asyncio.sleep(seconds)

        return io

    async def noop(_: Any) -> None:
        return None

    return noop


async def run_conveyor(url: str, queue: str, concurrency: int, kind: str) -> None:
    from conveyor import Conveyor, load_settings

    settings = load_settings(redis_url=url, conveyor_queues={queue: {"concurrency": concurrency}})
    app = Conveyor(settings)
    body = make_handler(kind)
    app.handler(queue, "job")(body)
    async with app:
        worker = app.worker([queue])
        worker.install_signal_handlers()
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.2)
        print("ready", flush=True)
        await task


async def run_stock(url: str, queue: str, concurrency: int, kind: str) -> None:
    from bullmq import Worker

    body = make_handler(kind)

    async def process(job: Any, token: str) -> Any:
        return await body(job.data)

    worker = Worker(queue, process, {"connection": url, "concurrency": concurrency})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await asyncio.sleep(0.2)
    print("ready", flush=True)
    await stop.wait()
    await worker.close()


def main() -> None:
    impl, queue, concurrency, kind = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    url = os.environ["REDIS_URL"]
    if impl == "conveyor":
        import uvloop

        uvloop.run(run_conveyor(url, queue, concurrency, kind))
    else:
        asyncio.run(run_stock(url, queue, concurrency, kind))


if __name__ == "__main__":
    main()
