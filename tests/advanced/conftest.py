"""Fixtures for the advanced job control tests: a connected app with test handlers, workers with the dead-letter
keeper and the scheduler attached (until `Worker` runs them itself), and a tiny webhook receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from conveyor import Conveyor, JobContext, JobState, NonRetryableError, Queue, load_settings
from conveyor.worker.dead_letters import DeadLetterKeeper, DeadLetterSettings
from conveyor.worker.scheduler import Scheduler
from conveyor.worker.worker import Worker
from tests.support import running, wait_until  # noqa: F401 (re-exported for the tests here)

FAST_DLQ = DeadLetterSettings(sweep_interval_s=0.2, sweep_grace_s=0.0, webhook_url=None)


def register_handlers(app: Conveyor) -> Conveyor:
    """Handlers on every queue: `ok` returns its payload's `result`, `fail` raises, `fatal` fails without retries,
    `flaky` fails until its payload's `succeed_from` attempt, `sum` adds its children's results (flows)."""
    for queue in app.queue_names:

        @app.handler(queue, "ok")
        async def ok(payload: dict[str, Any]) -> Any:
            return payload.get("result", "done")

        @app.handler(queue, "fail")
        async def fail(payload: dict[str, Any]) -> None:
            raise RuntimeError(str(payload.get("reason", "boom")))

        @app.handler(queue, "fatal")
        async def fatal(payload: dict[str, Any]) -> None:
            raise NonRetryableError("cannot ever work")

        @app.handler(queue, "flaky")
        async def flaky(payload: dict[str, Any], ctx: JobContext) -> str:
            if ctx.job.attempt < int(payload.get("succeed_from", 2)):
                raise RuntimeError(f"attempt {ctx.job.attempt} fails")
            return "finally"

    return app


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    """A Conveyor on the test's (empty) Redis with the test handlers."""
    conveyor = register_handlers(Conveyor(load_settings(redis_url=redis_url, conveyor_shutdown_grace_s=1)))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


def advanced(
    worker: Worker,
    dlq: DeadLetterSettings | None = FAST_DLQ,
    scheduler: bool = False,
) -> tuple[Worker, DeadLetterKeeper | None, Scheduler | None]:
    """Swap the worker's own dead-letter keeper (hook + duty) and scheduler for ones with test timings."""
    worker.hooks.hooks = [hook for hook in worker.hooks.hooks if not isinstance(hook, DeadLetterKeeper)]
    worker._duties = [
        duty for duty in worker._duties if not isinstance(getattr(duty, "__self__", None), DeadLetterKeeper | Scheduler)
    ]
    keeper = None
    if dlq is not None:
        keeper = DeadLetterKeeper([runner.queue for runner in worker.runners], dlq)
        worker.hooks.add(keeper)
        worker._duties.append(keeper.run)
    sched = None
    if scheduler:
        sched = Scheduler(worker.client, [runner.queue for runner in worker.runners])
        worker._duties.append(sched.run)
    return worker, keeper, sched


async def state_is(queue: Queue, job_id: str, state: JobState) -> bool:
    """True when the job is in `state` (for `wait_until`)."""
    return await queue.state_of(job_id) is state


@dataclass
class WebhookReceiver:
    """An HTTP server on a loopback port that records JSON POSTs and answers with the next scripted status."""

    statuses: list[int] = field(default_factory=list)  # answered in order; 200 once they run out
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    attempts: int = 0
    server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        lines = head.split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.attempts += 1
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.bodies.append(json.loads(body))
            self.headers.append(headers)
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver, closed after the test."""
    receiver = WebhookReceiver()
    receiver.server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    yield receiver
    receiver.server.close()
    await receiver.server.wait_closed()


# The API tests' fixtures (a real server with a token per role), shared with `tests/api`.
from tests.api.conftest import api, api_app, start_api  # noqa: E402, F401
