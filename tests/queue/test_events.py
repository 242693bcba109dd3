"""Queue events read from Redis: resuming from an id, and a subscriber that falls behind its buffer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from conveyor import Conveyor, load_settings
from conveyor.queue.events import EventHub, InvalidEventIdError, event_id_key


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[Conveyor]:
    conveyor = Conveyor(load_settings(redis_url=redis_url))
    await conveyor.connect()
    yield conveyor
    await conveyor.close()


def hub_of(app: Conveyor, buffer: int = 1000) -> EventHub:
    target = app.target
    assert target is not None
    return EventHub(app.client, lambda: target.client(blocking=True), app.settings.conveyor_prefix, buffer=buffer)


async def test_subscriber_that_overflows_its_buffer_catches_up_from_the_stream(app: Conveyor) -> None:
    hub = hub_of(app, buffer=2)
    try:
        async with hub.subscribe("background") as events:
            ids = [await app.add("background", "x") for _ in range(10)]
            await asyncio.sleep(0.3)  # let the reader push more than the buffer holds
            received = [await events.get(max_wait=5) for _ in range(20)]
    finally:
        await hub.close()
    assert [e.job_id for e in received if e is not None] == [i for i in ids for _ in range(2)]
    stream_ids = [event_id_key(e.id) for e in received if e is not None]
    assert stream_ids == sorted(set(stream_ids))


async def test_subscription_from_an_id_replays_what_came_after(app: Conveyor) -> None:
    first = await app.add("background", "x")
    [(since, _), *_] = await app.client.xrange(app.queue("background").keys.events)
    second = await app.add("background", "x")
    hub = hub_of(app)
    try:
        async with hub.subscribe("background", since) as events:
            replay = [await events.get(max_wait=5) for _ in range(3)]
            assert await events.get(max_wait=0.2) is None
    finally:
        await hub.close()
    assert [(e.name, e.job_id) for e in replay if e is not None] == [
        ("waiting", first), ("added", second), ("waiting", second),
    ]  # fmt: skip


def test_event_ids_are_validated() -> None:
    assert event_id_key("1700000000000-3") == (1700000000000, 3)
    assert event_id_key("0") == (0, 0)
    with pytest.raises(InvalidEventIdError):
        event_id_key("$")
