"""Revoking a token (or removing its tenant) closes the websocket connections it opened, ending their
subscriptions within about a second."""

from __future__ import annotations

import asyncio
import time

from websockets.exceptions import ConnectionClosed

from conveyor import Conveyor
from conveyor.api import TokenStore
from conveyor.queue.tenants import TenantStore, tenant_quotas
from tests.api.conftest import Api, WsClient
from tests.api.test_mutations import add

EVENTS = 'subscription { queueEvents(queue: "background") { event jobId } }'
CLOSE_WITHIN_S = 3.0


async def _events_until_closed(api: Api, ws: WsClient, within: float) -> tuple[int, float, int | None]:
    """Keep adding jobs and count the events still delivered; returns (events, seconds, close code)."""
    started, received = time.perf_counter(), 0
    while time.perf_counter() - started < within:
        await add(api, "background", "ok")
        try:
            while True:
                message = await ws.receive(within=0.1)
                received += message["type"] == "next"
        except TimeoutError:
            continue
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            return received, time.perf_counter() - started, code
    return received, time.perf_counter() - started, None


async def _close_code(ws: WsClient, within: float) -> int | None:
    """The code the server closes the connection with, reading (and dropping) messages until then."""
    try:
        while True:
            await ws.receive(within)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_revoking_a_token_closes_its_subscriptions(api: Api, api_app: Conveyor) -> None:
    store = TokenStore(api_app.client, api_app.settings.conveyor_prefix)
    issued = await store.create("soon revoked", "viewer")
    async with api.ws(issued.token) as ws:
        op = await ws.subscribe(EVENTS)
        await add(api, "background", "ok")
        assert (await ws.next_data(op))["queueEvents"]["event"] == "added"
        assert await store.revoke(issued.info.id)
        events, seconds, code = await _events_until_closed(api, ws, CLOSE_WITHIN_S + 2)
    assert code == 4403, f"not closed after {seconds:.2f} s; {events} events arrived after the revoke"
    assert seconds < CLOSE_WITHIN_S, f"closed only {seconds:.2f} s after the revoke ({events} events meanwhile)"


async def test_removing_a_tenant_closes_its_tokens_subscriptions(api: Api, api_app: Conveyor) -> None:
    prefix = api_app.settings.conveyor_prefix
    await TenantStore(api_app.client, prefix).save("acme", tenant_quotas())
    issued = await TokenStore(api_app.client, prefix).create("acme viewer", "viewer", tenant="acme")
    async with api.ws(issued.token) as ws:
        await ws.subscribe('subscription { queueStats(queueName: "background") { name } }')
        assert (await ws.receive())["type"] == "next"
        assert await TenantStore(api_app.client, prefix).remove("acme")
        assert await _close_code(ws, CLOSE_WITHIN_S) == 4403


async def test_connections_of_valid_tokens_stay_open(api: Api) -> None:
    async with api.ws("viewer") as ws:
        op = await ws.subscribe(EVENTS)
        await asyncio.sleep(2.5)  # more than two token checks
        await add(api, "background", "ok")
        assert (await ws.next_data(op))["queueEvents"]["event"] == "added"
