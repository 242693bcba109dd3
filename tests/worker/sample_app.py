"""A small app for runtime tests, also runnable as a worker process:
`python -m tests.worker.sample_app QUEUES CONCURRENCY`.

Handlers record each execution in Redis (`test:runs:<job id>` counters, a `test:order` list) so tests can check
exactly-once completion and ordering across processes. The `ledger` handler notes each start in a file outside
Redis (`TEST_LEDGER`: one line `<job id> <pid> <unix time>` per run), for tests that take Redis' word for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import redis
import uvloop

from conveyor import Conveyor, JobContext, load_settings


def create_app() -> Conveyor:
    app = Conveyor(load_settings())
    recorder = redis.Redis.from_url(app.settings.redis_url or "", decode_responses=True)

    def record(ctx: JobContext) -> None:
        pipe = recorder.pipeline(transaction=False)
        pipe.incr(f"test:runs:{ctx.job.queue}:{ctx.job.id}")
        pipe.rpush("test:order", ctx.job.id)
        pipe.execute()

    for queue in app.queue_names:

        @app.handler(queue, "record")
        def record_job(payload: dict[str, Any], ctx: JobContext) -> int:
            record(ctx)
            return os.getpid()

        @app.handler(queue, "sleep")
        async def sleep_job(payload: dict[str, Any], ctx: JobContext) -> int:
            await asyncio.sleep(float(payload.get("seconds", 0.5)))
            record(ctx)
            return os.getpid()

        @app.handler(queue, "busy")
        def busy_job(payload: dict[str, Any], ctx: JobContext) -> int:
            end = time.monotonic() + float(payload.get("seconds", 1.0))
            while time.monotonic() < end:
                sum(range(1000))
            record(ctx)
            return os.getpid()

        @app.handler(queue, "ledger")
        async def ledger_job(payload: dict[str, Any], ctx: JobContext) -> int:
            note_start(ctx.job.id)
            await asyncio.sleep(float(payload.get("seconds", 0.02)))
            return os.getpid()

        @app.handler(queue, "poison")
        def poison_job(payload: dict[str, Any], ctx: JobContext) -> int:
            """Kills the worker process that runs it, as a segfault in a C extension would."""
            note_start(ctx.job.id)
            os.kill(os.getpid(), signal.SIGKILL)
            return 0

        @app.handler(queue, "ledger-block")
        def ledger_block_job(payload: dict[str, Any], ctx: JobContext) -> int:
            """A sync handler that ignores cancellation; a job's rerun takes `rerun_seconds` instead."""
            again = ran_before(ctx.job.id)
            note_start(ctx.job.id)
            time.sleep(float(payload.get("rerun_seconds" if again else "seconds", 1.0)))
            return os.getpid()

    return app


def ran_before(job_id: str) -> bool:
    """True if the ledger has a run of this job already."""
    try:
        with open(os.environ["TEST_LEDGER"]) as ledger:
            return any(line.split()[0] == job_id for line in ledger)
    except FileNotFoundError:
        return False


def note_start(job_id: str) -> None:
    """Append one line for this run to the ledger file (one short O_APPEND write: lines never interleave)."""
    fd = os.open(os.environ["TEST_LEDGER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{job_id} {os.getpid()} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)


async def main(queues: list[str], concurrency: int, make_app: Callable[[], Conveyor] = create_app) -> None:
    app = make_app()
    async with app:
        worker = app.worker(queues, {name: concurrency for name in queues})
        worker.install_signal_handlers()
        await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(message)s")
    uvloop.run(main(sys.argv[1].split(","), int(sys.argv[2])))
    os._exit(0)  # do not wait for busy handler threads abandoned at shutdown
