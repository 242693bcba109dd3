"""The app `conveyor worker` runs in the benchmarks: `conveyor worker --app bench.cli_app:app`.

One queue, `bench`, at concurrency 10, and one job type, `job`: a no-op, or (with BENCH_HANDLER=start) a
handler that returns its start time, for pickup latency. Everything else is what users get by default.
"""

from __future__ import annotations

import os
import time

from conveyor import Conveyor, load_settings

QUEUE = "bench"
CONCURRENCY = 10

app = Conveyor(load_settings(conveyor_queues={QUEUE: {"concurrency": CONCURRENCY}}))

if os.environ.get("BENCH_HANDLER") == "start":

    @app.handler(QUEUE, "job")
    async def started(_: object) -> float:
        return time.time()

else:

    @app.handler(QUEUE, "job")
    async def noop(_: object) -> None:
        return None
