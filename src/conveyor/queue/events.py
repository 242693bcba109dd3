"""Queue events, read from Redis: BullMQ appends every state change of a queue's jobs to the stream
`<prefix>:<queue>:events` (`event=added|waiting|active|progress|completed|failed|delayed|removed|…`, `jobId`, …).

Because the events live in Redis, every API server and every worker, on any machine, sees the same history,
and a reader that went away resumes from the last event id it saw, without gaps, for as long as the stream
retains it (BullMQ trims it to about 10,000 events per queue).

`EventStream` reads one queue's stream. `EventHub` shares one blocking reader per queue among any number of
in-process subscribers; a subscriber that falls behind catches up from the stream itself, so none is ever
handed a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from conveyor.queue.errors import QueueError
from conveyor.redis.cluster import is_cluster
from conveyor.redis.keys import QueueKeys

log = logging.getLogger(__name__)

EVENT_ID = re.compile(r"^\d{1,19}(-\d{1,19})?$")
GAP_EVENT = "events-lost"  # synthetic: events between `since` and the oldest retained one were trimmed
_READ_COUNT = 500


class InvalidEventIdError(QueueError):
    """An event id that is not a Redis stream id."""

    def __init__(self, value: str) -> None:
        super().__init__(
            f"Invalid event id {value!r}: use the `id` of an event you received (like 1700000000000-0), "
            "or 0 to replay everything the stream retains."
        )


def event_id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable `(milliseconds, sequence)` pair.

    Raises:
        InvalidEventIdError: the text is not a stream id.
    """
    if not EVENT_ID.match(event_id):
        raise InvalidEventIdError(event_id)
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One entry of a queue's event stream."""

    id: str
    queue: str
    name: str
    job_id: str | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        """When Redis appended the event (the stream id's milliseconds)."""
        return datetime.fromtimestamp(event_id_key(self.id)[0] / 1000, UTC)

    @classmethod
    def parse(cls, queue: str, event_id: str, raw: dict[str, str]) -> QueueEvent:
        """Build an event from a stream entry."""
        fields = dict(raw)
        name = fields.pop("event", "")
        job_id = fields.pop("jobId", None)
        return cls(id=event_id, queue=queue, name=name, job_id=job_id, fields=fields)


class EventStream:
    """Reads one queue's event stream (`XRANGE` for history, `XREAD BLOCK` to wait for new events)."""

    def __init__(self, client: Redis, keys: QueueKeys) -> None:
        self.client = client
        self.keys = keys

    def _events(self, entries: list[Any]) -> list[QueueEvent]:
        return [QueueEvent.parse(self.keys.queue, str(entry_id), raw) for entry_id, raw in entries]

    async def last_id(self) -> str:
        """The id of the newest event, or `0-0` when the stream is empty."""
        entries = await self.client.xrevrange(self.keys.events, count=1)
        return str(entries[0][0]) if entries else "0-0"

    async def first_id(self) -> str | None:
        """The id of the oldest retained event, if any."""
        entries = await self.client.xrange(self.keys.events, count=1)
        return str(entries[0][0]) if entries else None

    async def after(self, event_id: str, count: int = _READ_COUNT) -> list[QueueEvent]:
        """Up to `count` events newer than `event_id`, oldest first."""
        event_id_key(event_id)
        entries: Any = await self.client.xrange(self.keys.events, min=f"({event_id}", count=count)
        return self._events(entries)

    async def lost_since(self, event_id: str) -> bool:
        """True when events newer than `event_id` may have been trimmed away: the oldest retained event is
        newer than it (a reader that saw `event_id` and then missed the next events cannot tell them apart
        from a trim, so this errs on the side of reporting a gap)."""
        since = event_id_key(event_id)
        if since == (0, 0):
            return False
        first = await self.first_id()
        return first is not None and event_id_key(first) > since

    async def read(self, after: str, block_ms: int, count: int = _READ_COUNT) -> list[QueueEvent]:
        """Wait up to `block_ms` for events newer than `after` (needs a client without socket timeout)."""
        reply: Any = await self.client.xread({self.keys.events: after}, count=count, block=block_ms)
        if not reply:
            return []
        return self._events(reply[0][1])


class _Feed:
    """One subscriber's buffer of live events; on overflow it stops buffering and says so."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: deque[QueueEvent] = deque()
        self.overflowed = False
        self.ready = asyncio.Event()

    def push(self, event: QueueEvent) -> None:
        if len(self.items) >= self.size:
            self.overflowed = True
            self.items.clear()
        elif not self.overflowed:
            self.items.append(event)
        self.ready.set()

    def reset(self) -> None:
        self.items.clear()
        self.overflowed = False

    async def get(self, max_wait: float | None) -> QueueEvent | bool | None:
        """The next event; True when the feed overflowed; None when `max_wait` seconds passed first."""
        while not self.items and not self.overflowed:
            self.ready.clear()
            try:
                await asyncio.wait_for(self.ready.wait(), max_wait)
            except TimeoutError:
                return None
        if self.overflowed:
            return True
        return self.items.popleft()


class _Reader:
    """The one blocking `XREAD` loop of a queue, pushing each event to every subscriber's feed."""

    def __init__(self, hub: EventHub, keys: QueueKeys) -> None:
        self.hub = hub
        self.keys = keys
        self.feeds: set[_Feed] = set()
        self.running = True
        # Set once the read position is fixed: a subscriber catches up from the stream only after this, so
        # whatever the reader does not deliver, the catch-up reads.
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run(), name=f"events:{keys.queue}")

    async def _run(self) -> None:
        client = self.hub.make_blocking_client()
        try:
            stream = EventStream(client, self.keys)
            last = await self._start_id()
            self.ready.set()
            while True:
                if not self.feeds:
                    self.running = False  # decided with no await in between: a new subscriber starts a new reader
                    return
                try:
                    events = await stream.read(last, self.hub.block_ms)
                except RedisError as exc:
                    log.warning("reading events of %s failed (%s); retrying", self.keys.queue, exc)
                    await asyncio.sleep(self.hub.retry_s)
                    continue
                for event in events:
                    last = event.id
                    for feed in list(self.feeds):
                        feed.push(event)
        finally:
            self.running = False
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _start_id(self) -> str:
        while True:
            try:
                return await EventStream(self.hub.client, self.keys).last_id()
            except RedisError as exc:
                log.warning("reading events of %s failed (%s); retrying", self.keys.queue, exc)
                await asyncio.sleep(self.hub.retry_s)


class EventSubscription:
    """A subscriber's view of one queue's events, from `since` (exclusive) or from now on.

    Use as `async with hub.subscribe(queue, since) as events:` then `async for event in events` or
    `await events.get(max_wait)`.
    """

    def __init__(self, hub: EventHub, keys: QueueKeys, since: str | None) -> None:
        if since is not None:
            event_id_key(since)
        self.hub = hub
        self.keys = keys
        self.since = since
        self.stream = EventStream(hub.client, keys)
        self.last = since or "0-0"
        self._feed = _Feed(hub.buffer)
        self._backlog: deque[QueueEvent] = deque()
        self._catching_up = True

    async def __aenter__(self) -> EventSubscription:
        reader = self.hub.join(self.keys, self._feed)
        try:
            await reader.ready.wait()
            if self.since is None:
                self.last = await self.stream.last_id()
        except BaseException:
            self.hub.leave(self.keys, self._feed)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hub.leave(self.keys, self._feed)

    async def lost(self) -> bool:
        """True when events after `since` were trimmed before this subscription could read them."""
        return self.since is not None and await self.stream.lost_since(self.since)

    async def get(self, max_wait: float | None = None) -> QueueEvent | None:
        """The next event, in stream order and without gaps; None when `max_wait` seconds pass first."""
        while True:
            if self._backlog:
                event = self._backlog.popleft()
                self.last = event.id
                return event
            if self._catching_up:
                batch = await self.stream.after(self.last)
                if batch:
                    self._backlog.extend(batch)
                    continue
                self._catching_up = False
            item = await self._feed.get(max_wait)
            if item is None:
                return None
            if item is True:
                self._feed.reset()  # read what the feed dropped from the stream itself
                self._catching_up = True
                continue
            if isinstance(item, QueueEvent) and event_id_key(item.id) > event_id_key(self.last):
                self.last = item.id
                return item

    async def __aiter__(self) -> AsyncIterator[QueueEvent]:
        while True:
            event = await self.get()
            if event is not None:
                yield event


class EventHub:
    """Shares one blocking reader per queue among this process's subscribers.

    Args:
        client: a regular client (history reads).
        make_blocking_client: makes a client without socket timeout for `XREAD BLOCK` (one per queue read).
        prefix: the key prefix of the queues.
        block_ms: how long one `XREAD` waits; a reader with no subscribers left stops after at most this.
        buffer: events buffered per subscriber before it falls back to reading the stream itself.
    """

    def __init__(
        self,
        client: Redis,
        make_blocking_client: Callable[[], Redis],
        prefix: str,
        *,
        block_ms: int = 2000,
        buffer: int = 1000,
        retry_s: float = 1.0,
    ) -> None:
        self.client = client
        self.make_blocking_client = make_blocking_client
        self.prefix = prefix
        self.block_ms = block_ms
        self.buffer = buffer
        self.retry_s = retry_s
        self._readers: dict[str, _Reader] = {}

    def subscribe(self, queue: str, since: str | None = None) -> EventSubscription:
        """A subscription to a queue's events after `since` (an event id), or from now when None.

        Raises:
            InvalidEventIdError: `since` is not a stream id.
        """
        return EventSubscription(self, QueueKeys(self.prefix, queue, is_cluster(self.client)), since)

    def join(self, keys: QueueKeys, feed: _Feed) -> _Reader:
        """Register a subscriber's feed, starting the queue's reader if none runs; returns the reader."""
        reader = self._readers.get(keys.queue)
        if reader is None or not reader.running:
            reader = _Reader(self, keys)
            self._readers[keys.queue] = reader
        reader.feeds.add(feed)
        return reader

    def leave(self, keys: QueueKeys, feed: _Feed) -> None:
        """Unregister a feed; the reader stops by itself once it has none."""
        reader = self._readers.get(keys.queue)
        if reader is not None:
            reader.feeds.discard(feed)

    async def close(self) -> None:
        """Stop every reader and close their connections."""
        tasks = [reader.task for reader in self._readers.values()]
        self._readers.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
