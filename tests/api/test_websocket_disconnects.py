"""A websocket client that goes away normally (a close, or its TCP connection dropping), even while results are
on their way to it, is no error: the API server logs no ERROR and no traceback for it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from conveyor import Conveyor
from tests.api.conftest import Api, WsClient

SUBSCRIPTIONS = (
    'subscription { queueEvents(queue: "background") { id event } }',
    'subscription { queueStats(queueName: "background") { waiting active } }',
)


def _trouble(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR or record.exc_info is not None
    ]


@contextlib.asynccontextmanager
async def _jobs_being_added(app: Conveyor) -> AsyncIterator[None]:
    """Events keep coming while the block runs: a result is often on its way when a client goes."""

    async def produce() -> None:
        while True:
            await app.add("background", "ok", warn_unserved=False)
            await asyncio.sleep(0.001)

    task = asyncio.create_task(produce())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _subscribed(ws: WsClient) -> None:
    for query in SUBSCRIPTIONS:
        await ws.subscribe(query)
    for _ in range(5):
        await ws.receive()


def _reset(ws: WsClient) -> None:
    """Drop the TCP connection without a close handshake (RST), as a killed browser tab or a lost network does."""
    sock = ws.ws.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ws.ws.transport.abort()


@pytest.mark.parametrize("how", ["close", "connection drop"])
async def test_a_client_that_goes_away_while_results_flow_logs_no_error(
    api: Api, api_app: Conveyor, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    caplog.set_level(logging.INFO)
    async with _jobs_being_added(api_app):
        for _ in range(8):
            async with api.ws("viewer", close_timeout=0.2) as ws:
                await _subscribed(ws)
                if how == "connection drop":
                    _reset(ws)
        await asyncio.sleep(1.0)  # results sent meanwhile find the clients gone
    assert _trouble(caplog) == []
