"""The fetcher's blocking waits on its queue's wake-up marker (BullMQ's `marker` sorted set).

A wait is a BZPOPMIN on a connection of the fetcher's own. It can be ended early (`nudge`, CLIENT UNBLOCK: it
then returns as if timed out), which a delayed job's due time or a freed priority slot needs, because Redis ends
blocking waits only on its server tick. On plain TCP and unix-socket targets the connection is a lane (see
`conveyor.redis.lane`), and a wait can carry `moveToActive` behind it (`pop_then_fetch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from conveyor.queue.queue import Queue
from conveyor.redis.cluster import connection_options, is_cluster
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.lane import close_lane, lane_for
from conveyor.redis.scripts import FetchedJob

log = logging.getLogger(__name__)

IDLE_BLOCK_S = 30.0  # longest blocking wait on the marker; a new job still wakes the fetcher at once
# On a cluster without lanes (TLS) a wait cannot be nudged (CLIENT UNBLOCK needs the waiting connection's id on its
# node, which redis-py's cluster client does not expose): a wait that would be nudgeable ends by itself this soon.
CLUSTER_NUDGE_POLL_S = 0.25
LEASE_FRACTION = 0.5  # of the lock duration: a fetch behind a wait runs only if the wait returns within this
# (see `conveyor.redis.fetch_lease`); less than the two thirds of a lock after which a stopped worker's jobs
# can be requeued, so its queued fetch never takes them back


class MarkerWait:
    """Blocking waits for one queue's fetcher (one wait at a time)."""

    def __init__(self, queue: Queue, blocking: Redis) -> None:
        self.queue = queue
        self.blocking = blocking
        # The lane is the connection that waits: it carries the blocking client's name (a BullMQ worker name).
        # On a cluster it is the lane of the queue's slot, on the primary serving it.
        name = _client_name(blocking) or "conveyor-fetcher"
        lane = lane_for(blocking, name=name, slot_key=queue.keys.marker)
        self.lane = lane if lane.usable and queue.scripts.lane.usable else None
        if self.lane is not None and not is_cluster(blocking):
            # Only the lane carries the name: a connection the client opens beside it (a fallback under load)
            # would make Node's getWorkers and Bull Board list this worker twice.
            blocking.connection_pool.connection_kwargs["client_name"] = "conveyor-fetcher"
        self._blocking_id: int | None = None  # of the waiting connection, while a nudgeable wait is on
        self._unblocking: asyncio.Future[Any] | None = None

    @property
    def carries_fetch(self) -> bool:
        """Whether `pop_then_fetch` is available."""
        return self.lane is not None

    async def pop(self, stop: asyncio.Event, *, nudgeable: bool, due_in_s: float | None = None) -> int | None:
        """Wait for the marker. Returns its score (0: jobs are waiting; else the time a delayed job is due), or
        None when the wait timed out, was nudged, or `stop` was set. With `due_in_s`, the wait ends then."""
        timeout = IDLE_BLOCK_S
        timer: asyncio.TimerHandle | None = None
        if self.lane is None and is_cluster(self.blocking):
            return await self._pop_unnudged(stop, CLUSTER_NUDGE_POLL_S if nudgeable else due_in_s)
        if nudgeable or due_in_s is not None:
            self._blocking_id = await (self.lane.connection_id() if self.lane else self.blocking.client_id())
        if due_in_s is not None:
            timeout = min(timeout, due_in_s + 1.0)
            timer = asyncio.get_running_loop().call_later(due_in_s, self.nudge)
        try:
            return await self._popped(timeout, stop)
        finally:
            self._blocking_id = None
            if timer is not None:
                timer.cancel()

    async def _pop_unnudged(self, stop: asyncio.Event, due_in_s: float | None) -> int | None:
        """`pop` on a cluster: the wait's own timeout stands in for a nudge (Redis may end it up to a server
        tick, 100 ms at the default `hz`, late)."""
        timeout = IDLE_BLOCK_S if due_in_s is None else max(0.01, min(IDLE_BLOCK_S, due_in_s))
        return await self._popped(timeout, stop)

    async def _popped(self, wait_s: float, stop: asyncio.Event) -> int | None:
        """One BZPOPMIN: the marker's score, or None if it timed out or `stop` came first. A wait not done when
        this returns (stopping) or is cancelled is cancelled too: the connection is closed with the fetcher."""
        popping = asyncio.ensure_future(self._bzpopmin(wait_s))
        popping.add_done_callback(_outcome_read)  # a wait cancelled as it failed leaves no failure unread
        try:
            await _first_of(popping, stop)
        finally:
            if not popping.done():
                popping.cancel()  # takes effect when the wait's task next runs: it is not done yet
        if not popping.done() or popping.cancelled():
            return None  # `stop` came first
        popped = popping.result()
        return None if popped is None else int(float(popped[2]))

    async def pop_then_fetch(
        self, stop: asyncio.Event, *, token: str, lock_ms: int, worker: str, timestamp: int
    ) -> FetchedJob:
        """Wait for the marker with `moveToActive` sent behind the wait (see `QueueScripts.wait_then_move_to_
        active`): what it took when a job came, the wait timed out, or `stop` was set (then the wait is ended,
        and the script may still take a job: the caller hands it back)."""
        assert self.lane is not None
        scripts = self.queue.scripts
        call = asyncio.ensure_future(
            scripts.wait_then_move_to_active(
                self.lane,
                wait_s=IDLE_BLOCK_S,
                token=token,
                lock_ms=lock_ms,
                lease_ms=int(lock_ms * LEASE_FRACTION),
                worker=worker,
                timestamp=timestamp,
            )
        )
        # If the fetcher itself is cancelled (not stopped), the call is left to end with the connection (a job its
        # script took goes to the stalled check): its failure then has no reader, and must not be logged as lost.
        call.add_done_callback(_outcome_read)
        await _first_of(call, stop)
        if not call.done():
            with contextlib.suppress(*CONNECTION_FAILURES):
                await self._unblock(await self.lane.connection_id())
            done, _ = await asyncio.wait({call}, timeout=5)
            if not done:
                self.lane.close()  # Redis did not answer: the call fails with the connection
        return await call

    def nudge(self) -> None:
        """End the current wait now (it returns as if timed out), if one is on and was started nudgeable."""
        if self._blocking_id is None:
            return
        self._unblocking = asyncio.ensure_future(self._unblock(self._blocking_id))
        self._unblocking.add_done_callback(warn_if_failed("unblock the fetcher on time"))

    async def _unblock(self, client_id: int) -> Any:
        """CLIENT UNBLOCK the waiting connection. On a cluster, over the queue's lane: the connection waits on
        the node serving the queue's slot, and ids are per node."""
        if is_cluster(self.queue.client):
            return await self.queue.scripts.lane.command("CLIENT", "UNBLOCK", client_id)
        return await self.queue.client.client_unblock(client_id)

    def close(self) -> None:
        """Close the waiting connection, if it is a lane (redis-py's is closed with its client)."""
        close_lane(self.blocking)

    async def _bzpopmin(self, wait_s: float) -> Any:
        if self.lane is not None:
            return await self.lane.command("BZPOPMIN", self.queue.keys.marker, wait_s)
        return await self.blocking.bzpopmin(self.queue.keys.marker, wait_s)


def _client_name(client: Redis) -> str | None:
    """The CLIENT SETNAME name a client's connections carry."""
    options = connection_options(client) if is_cluster(client) else client.connection_pool.connection_kwargs
    name = options.get("client_name")
    return str(name) if name else None


def _outcome_read(call: asyncio.Future[Any]) -> None:
    if not call.cancelled():
        call.exception()  # read: asyncio reports a failure nobody read when the future is collected


async def _first_of(call: asyncio.Future[Any], stop: asyncio.Event) -> None:
    """Wait until `call` is done or `stop` is set."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({call, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()


def warn_if_failed(what: str) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback that logs a warning (`could not <what>`) if the future failed."""

    def check(future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("could not %s: %s", what, future.exception())

    return check
