"""The app the CLI tests run, passed as `--app tests.cli.sample_app:create_app`.

It is the standard app plus a few handlers on every queue. They touch no Redis of their own, so the same
app serves tests against the session Redis and tests of `conveyor up`'s embedded server.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from conveyor import Conveyor, JobContext, Settings
from conveyor.standard import create_app as create_standard_app


class Greeting(BaseModel):
    name: str
    times: int = 1


def create_app(settings: Settings | None = None) -> Conveyor:
    app = create_standard_app(settings)
    for queue in app.queue_names:

        @app.handler(queue, "echo")
        async def echo(payload: Any) -> Any:
            return payload

        @app.handler(queue, "greet", payload=Greeting)
        async def greet(payload: Greeting) -> str:
            return " ".join([f"hello {payload.name}"] * payload.times)

        @app.handler(queue, "sleep")
        async def sleep(payload: dict[str, Any], ctx: JobContext) -> int:
            await asyncio.sleep(float(payload.get("seconds", 0.5)))
            return os.getpid()

        @app.handler(queue, "block")
        def block(payload: dict[str, Any]) -> int:
            time.sleep(float(payload.get("seconds", 0.5)))  # a sync handler that ignores cancellation
            return os.getpid()

        @app.handler(queue, "fail-unless-file")
        def fail_unless_file(payload: dict[str, Any]) -> str:
            if not Path(payload["path"]).exists():
                raise RuntimeError(f"{payload['path']} does not exist yet")
            return "found"

    return app
