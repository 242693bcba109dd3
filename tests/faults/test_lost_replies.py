"""A reply that never reaches the producer (held back past its timeout, or lost with its connection) does not
duplicate an enqueue: the id is made before the first try, every retry (the lane falling back to redis-py,
redis-py's own reconnect-and-retry) re-sends it, and BullMQ's add script adds nothing for an id that exists."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis.asyncio as aioredis

from conveyor import JobOptions, NewJob, Queue
from conveyor.redis import connection
from conveyor.redis.connection import RedisTarget
from conveyor.redis.lane import lane_for
from conveyor.redis.scripts import script_source

QUEUE = "lost-replies"
COMMAND_TIMEOUT_S = 0.5  # the client gives up on a reply after this (production: 10 s)
HELD_S = 2.0  # how long the proxy holds a reply back: well past the timeout


@dataclass
class Fault:
    """What the proxy does to the reply of a request that contains `marker`: hold it back, or drop it and
    cut the connection. Applies to the next `times` such requests."""

    marker: bytes
    times: int
    drop: bool = False


class ReplyProxy:
    """A loopback TCP proxy in front of Redis that can hold back or drop the reply to chosen requests."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.fault: Fault | None = None
        self.faults_done = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        armed: list[Fault] = []  # the fault to apply to this connection's next reply
        pumps = [
            asyncio.ensure_future(self._requests(client_r, server_w, armed)),
            asyncio.ensure_future(self._replies(server_r, client_w, armed)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
                self._tasks.discard(pump)
            for writer in (client_w, server_w):
                writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, armed: list[Fault]) -> None:
        while chunk := await reader.read(65536):
            fault = self.fault
            if fault is not None and fault.times > 0 and fault.marker in chunk:
                fault.times -= 1
                armed.append(fault)
            writer.write(chunk)
            await writer.drain()

    async def _replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, armed: list[Fault]) -> None:
        while chunk := await reader.read(65536):
            if armed:
                fault = armed.pop()
                self.faults_done += 1
                if fault.drop:
                    return  # the reply is lost with the connection
                await asyncio.sleep(HELD_S)
            with contextlib.suppress(ConnectionError):
                writer.write(chunk)
                await writer.drain()


@pytest.fixture
async def direct(redis_url: str) -> AsyncIterator[Queue]:
    """The queue on a client straight to Redis (no proxy), with BullMQ's add scripts loaded, so the proxied
    client's first EVALSHA is the add itself and not a NOSCRIPT round."""
    client = RedisTarget(url=redis_url).client()
    for name in ("addStandardJob", "addPrioritizedJob", "addDelayedJob"):
        await client.script_load(script_source(name))
    yield Queue(client, QUEUE)
    await client.aclose()


@pytest.fixture
async def proxy(redis_url: str) -> AsyncIterator[ReplyProxy]:
    server = ReplyProxy(int(urlsplit(redis_url).port or 6379))
    yield server
    await server.close()


@pytest.fixture
async def proxied(
    redis_url: str, proxy: ReplyProxy, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Queue, aioredis.Redis]]:
    """The queue on a production client (lane, redis-py retries) that reaches Redis through the proxy, with
    a short command timeout."""
    monkeypatch.setattr(connection, "_COMMAND_TIMEOUT_S", COMMAND_TIMEOUT_S)
    parts = urlsplit(redis_url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{await proxy.start()}"
    client = RedisTarget(url=urlunsplit(parts._replace(netloc=netloc))).client()
    assert lane_for(client).usable  # one-off adds take the lane, as in production
    yield Queue(client, QUEUE), client
    await client.aclose()


async def jobs_in(queue: Queue) -> int:
    counts = await queue.counts()
    return counts.pending + counts.active + counts.completed + counts.failed


@pytest.mark.parametrize(
    "fault",
    [
        Fault(b"EVALSHA", times=1),  # the lane times out and falls back to redis-py
        Fault(b"EVALSHA", times=2),  # redis-py times out too, reconnects and retries
        Fault(b"EVALSHA", times=1, drop=True),  # the reply is lost with its connection
    ],
    ids=["held-once", "held-twice", "dropped"],
)
async def test_an_add_whose_reply_is_lost_creates_exactly_one_job(
    direct: Queue, proxied: tuple[Queue, aioredis.Redis], proxy: ReplyProxy, fault: Fault
) -> None:
    queue, _ = proxied
    proxy.fault = replace(fault)  # the proxy counts its copy down
    job_id = await asyncio.wait_for(queue.add("ok", {"n": 1}), 10)
    assert proxy.faults_done == fault.times  # the replies really were held back or lost
    assert await jobs_in(direct) == 1
    assert (await direct.get_job(job_id)).data == {"n": 1}


async def test_an_add_bulk_whose_reply_is_lost_creates_each_job_once(
    direct: Queue, proxied: tuple[Queue, aioredis.Redis], proxy: ReplyProxy
) -> None:
    queue, _ = proxied
    proxy.fault = Fault(b"EVALSHA", times=1)
    ids = await asyncio.wait_for(queue.add_bulk([NewJob("ok", {"n": n}) for n in range(3)]), 10)
    assert proxy.faults_done == 1
    assert await jobs_in(direct) == 3
    assert sorted([(await direct.get_job(job_id)).data["n"] for job_id in ids]) == [0, 1, 2]


async def test_adding_an_explicit_id_again_adds_nothing_even_after_a_lost_reply(
    direct: Queue, proxied: tuple[Queue, aioredis.Redis], proxy: ReplyProxy
) -> None:
    queue, _ = proxied
    proxy.fault = Fault(b"EVALSHA", times=1)
    options = JobOptions(job_id="order-42")
    assert await asyncio.wait_for(queue.add("ok", {"n": 1}, options), 10) == "order-42"
    assert proxy.faults_done == 1
    assert await queue.add("ok", {"n": 2}, options) == "order-42"
    assert await jobs_in(direct) == 1
    assert (await direct.get_job("order-42")).data == {"n": 1}  # the first add's job, untouched
