"""A fast lane for script calls made outside a pipeline: one plain connection, written to directly.

An application that enqueues jobs one at a time (`await add(...)` per request) would pay redis-py's full
per-command cost on each: a pool checkout and return, retry and observability wrappers, stream reads under a
timeout. Together those cost about as much as Redis needs to run the script. The lane keeps one connection of
its own, speaks RESP over an asyncio protocol with hiredis' parser, and pipelines: concurrent callers share the
connection, each gets its own reply in order.

It is used for plain TCP and unix-socket targets (the embedded default and plain `redis://` URLs), and on a Redis
Cluster for the calls of one queue: such a lane connects to the primary serving the queue's slot (as the cluster
client's slot map has it when the lane connects). A node that answers MOVED, ASK, CLUSTERDOWN or TRYAGAIN did not
run the call; the lane then closes its connection, so that it connects to the slot's new owner next time, and the
call goes the cluster client's way. TLS and Sentinel targets keep redis-py's path. A script Redis forgot is
loaded over the lane, once for all callers. When the lane cannot answer (the connection broke, a reply took too
long) the call goes the usual way, which reconnects and retries, as it would have anyway.

A worker's fetcher also keeps a lane on its blocking client: it sends the script that takes a job right behind
its blocking wait for the wake-up marker, so Redis runs it the moment a job arrives (`wait_then_run`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import (
    BlockingConnectionPool,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.commands.core import AsyncScript
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.redis.cluster import REDIRECTIONS, connection_options, is_cluster, slot_address
from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.packing import ENCODING, ENCODING_ERRORS, pack_command

_LANES: weakref.WeakKeyDictionary[Redis, dict[int, DirectLane]] = weakref.WeakKeyDictionary()
_ANY_SLOT = -1  # the one lane of a single-server client


class MisdirectedError(RedisConnectionError):
    """A cluster node did not run a lane's command: the slot is served elsewhere, or by no node right now."""


class _Wire(asyncio.Protocol):
    """One RESP connection: requests are written in order and each reply settles the oldest waiting future."""

    def __init__(self, reply_timeout_s: float | None) -> None:
        self.reader = hiredis.Reader(encoding=ENCODING, errors=ENCODING_ERRORS)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.reply_timeout_s = reply_timeout_s
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.client_id = 0  # Redis' id of this connection (CLIENT ID), to end a blocking wait on it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if not future.done():  # a caller that was cancelled or timed out still had its reply in line
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(RedisConnectionError(f"lane connection lost: {exc or 'closed by server'}"))

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()

    async def call(self, *args: Any) -> Any:
        """Send one command and return its reply (an error reply is raised). `call_many` for one command,
        without the lists: this is every one-off `add`'s path."""
        if self.lost or self.transport is None:
            raise RedisConnectionError("lane connection lost")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.append(future)
        self.transport.write(pack_command(args))
        timer = None if self.reply_timeout_s is None else loop.call_later(self.reply_timeout_s, self._expire, [future])
        try:
            reply = await future
        finally:
            if timer is not None:
                timer.cancel()
        if isinstance(reply, hiredis.ReplyError):
            error = reply_value(reply)
            if isinstance(error, MisdirectedError):
                self.close()  # connect to the slot's owner next time
            raise error
        return reply

    def send(self, commands: Sequence[Sequence[Any]]) -> list[asyncio.Future[Any]]:
        """Write commands in one write, now; one future per command, settled by its own reply as it arrives (an
        error reply as a `hiredis.ReplyError` value: see `reply_value`), or failed with the connection, or when no
        reply came in time (which closes the connection)."""
        if self.lost or self.transport is None:
            raise RedisConnectionError("lane connection lost")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in commands]
        self.waiting.extend(futures)
        self.transport.write(b"".join(pack_command(tuple(command)) for command in commands))
        if self.reply_timeout_s is not None:
            timer = loop.call_later(self.reply_timeout_s, self._expire, futures)
            futures[-1].add_done_callback(lambda _: timer.cancel())  # replies come in order: the last settles last
        return futures

    async def call_many(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Send commands in one write; their replies in order, error replies as `ResponseError` values."""
        futures = self.send(commands)
        try:
            replies = [reply_value(await future) for future in futures]
            if any(isinstance(reply, MisdirectedError) for reply in replies):
                self.close()  # connect to the slot's owner next time
            return replies
        except BaseException:
            for future in futures:  # the rest are abandoned: no "exception never retrieved" for them
                if not future.cancel() and not future.cancelled():
                    future.exception()
            raise

    def _expire(self, futures: list[asyncio.Future[Any]]) -> None:
        late = [future for future in futures if not future.done()]
        for future in late:
            future.set_exception(RedisTimeoutError("no reply from Redis in time"))
        if late:
            self.close()  # a reply may still come: the connection is out of step, like redis-py's after a timeout


def reply_value(reply: Any) -> Any:
    """A reply as the lane's callers get it: an error reply as the redis-py exception it stands for (a value)."""
    if isinstance(reply, hiredis.ReplyError):
        message = str(reply)
        if message.startswith("OOM "):  # typed as redis-py types it, so that it is handled like an outage
            return OutOfMemoryError(message)
        if message.startswith(REDIRECTIONS):
            return MisdirectedError(message)
        return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)
    return reply


@dataclass(frozen=True)
class Lease:
    """How long a script sent behind a wait may still run (`DirectLane.wait_then_run`): `key` lives `ms`."""

    key: str
    ms: int


class DirectLane:
    """The lane of one client (see the module docstring)."""

    def __init__(self, client: Redis, name: str = "conveyor-lane", slot_key: str | None = None) -> None:
        """`slot_key` (on a cluster client; else ignored): a key of the slot whose primary the lane talks to."""
        self.name = name
        self.options: dict[str, Any] = {}
        self._wire: _Wire | None = None
        self._connecting: asyncio.Task[_Wire] | None = None
        self._loading: dict[str, asyncio.Future[Any]] = {}  # SCRIPT LOADs in flight, by sha
        self._address: Callable[[bool], Awaitable[tuple[str, int]]] | None = None
        self._connects = 0
        self.usable = False
        if is_cluster(client):
            if slot_key is not None:  # without one, a cluster client has no one server to talk to
                self.options = connection_options(client)
                self._address = slot_address(client, slot_key)
                self.usable = not self.options.get("ssl") and self.options.get("credential_provider") is None
            return
        pool = client.connection_pool  # no reference to the client kept: it is the weak key of its lane
        self.options = dict(pool.connection_kwargs)
        self.usable = (
            type(pool) in (ConnectionPool, BlockingConnectionPool)  # not Sentinel's
            and issubclass(pool.connection_class, (Connection, UnixDomainSocketConnection))
            and not issubclass(pool.connection_class, SSLConnection)
            and self.options.get("credential_provider") is None
        )

    async def run(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Like `await script(keys=keys, args=args)`."""
        if not self.usable:
            return await script(keys=keys, args=args)
        try:
            wire = self._wire
            if wire is None or wire.lost:
                wire = await self._connected()
            try:
                return await wire.call("EVALSHA", script.sha, len(keys), *keys, *args)
            except NoScriptError:
                pass
            await self._load(wire, script)  # Redis forgot the script (a restart, SCRIPT FLUSH): load it once
            return await wire.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except CONNECTION_FAILURES:
            return await script(keys=keys, args=args)

    def send_now(
        self, calls: Sequence[tuple[AsyncScript, Sequence[str], Sequence[Any]]]
    ) -> list[asyncio.Future[Any]] | None:
        """Many script calls in one write, made at once, for `usable` lanes only: one future per call, settled by
        its own reply as it arrives (see `_Wire.send`); None when the lane has no connection up (`connect` first).
        A `NoScriptError` or `MisdirectedError` reply means the call did not run: `run` it (`close` the lane
        first after a misdirected one)."""
        wire = self._wire
        if wire is None or wire.lost:
            return None
        return wire.send([("EVALSHA", script.sha, len(keys), *keys, *args) for script, keys, args in calls])

    async def connect(self) -> None:
        """Have the lane's connection up (raises what connecting ran into)."""
        await self._connected()

    async def wait_then_run(
        self,
        wait: Sequence[Any],
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[Any],
        lease: Lease | None = None,
    ) -> tuple[Any, Any]:
        """A blocking command and then a script call, in one write: Redis runs the script as soon as the wait
        returns, without a round trip in between. For `usable` lanes only. Returns both replies (the script's
        error reply as a value, `NoScriptError` if Redis forgot it); raises when the connection failed, and then
        the caller cannot know whether the script ran.

        With a `lease`, its key is set with a TTL of `lease.ms` before the wait: the script is the one to check
        that the key still lives (and to end the lease), as `conveyor.redis.fetch_lease` does."""
        wire = await self._connected()
        call = ("EVALSHA", script.sha, len(keys), *keys, *args)
        if lease is None:
            waited, ran = await wire.call_many([wait, call])
            return waited, ran
        replies = await wire.call_many([("SET", lease.key, "1", "PX", lease.ms), wait, call])
        misdirected = [reply for reply in replies if isinstance(reply, MisdirectedError)]
        if misdirected:
            raise misdirected[0]  # the wait and the script did not run there
        return replies[1], replies[2]

    async def command(self, *args: Any) -> Any:
        """One command over the lane (`usable` lanes only): it reaches Redis before any later call on the lane."""
        wire = await self._connected()
        return await wire.call(*args)

    async def connection_id(self) -> int:
        """Redis' id of the lane's connection (for CLIENT UNBLOCK); connects if needed."""
        return (await self._connected()).client_id

    async def _load(self, wire: _Wire, script: AsyncScript) -> None:
        loading = self._loading.get(script.sha)
        if loading is None:
            loading = self._loading[script.sha] = asyncio.ensure_future(wire.call("SCRIPT", "LOAD", script.script))
            loading.add_done_callback(lambda _: self._loading.pop(script.sha, None))
        await asyncio.shield(loading)

    async def _connected(self) -> _Wire:
        wire = self._wire
        if wire is not None and not wire.lost:
            return wire
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
            self._connecting.add_done_callback(self._connected_or_failed)
        return await asyncio.shield(self._connecting)

    def _connected_or_failed(self, task: asyncio.Task[_Wire]) -> None:
        self._connecting = None
        if not task.cancelled() and task.exception() is None:
            self._wire = task.result()

    async def _connect(self) -> _Wire:
        options = self.options
        loop = asyncio.get_running_loop()
        wire = _Wire(options.get("socket_timeout"))
        path = options.get("path")
        if self._address is not None:
            host, port = await self._address(self._connects > 0)  # a reconnect re-reads the cluster's slot map
            self._connects += 1
        else:
            host, port = options.get("host", "localhost"), options.get("port", 6379)
        opening = (
            loop.create_unix_connection(lambda: wire, path)
            if path
            else loop.create_connection(lambda: wire, host, port)
        )
        await asyncio.wait_for(opening, options.get("socket_connect_timeout"))
        try:
            if options.get("password") is not None:
                user = options.get("username")
                await wire.call("AUTH", *([user] if user else []), options["password"])
            if options.get("db"):
                await wire.call("SELECT", options["db"])
            await wire.call("CLIENT", "SETNAME", self.name)
            wire.client_id = int(await wire.call("CLIENT", "ID"))
        except ResponseError as exc:  # e.g. a wrong password: the usual path reports it as it always does
            wire.close()
            raise RedisConnectionError(f"lane handshake refused: {exc}") from exc
        except BaseException:
            wire.close()
            raise
        return wire

    def close(self) -> None:
        """Close the lane's connection (the client's own are closed by `client.aclose()`)."""
        if self._wire is not None:
            self._wire.close()
            self._wire = None


def lane_for(client: Redis, name: str = "conveyor-lane", slot_key: str | None = None) -> DirectLane:
    """The lane of `client` (one per client, shared by every queue using it; on a cluster one per slot, of
    `slot_key`'s slot, and none usable without a key); `name` is its CLIENT SETNAME."""
    slot = key_slot(slot_key.encode()) if slot_key is not None and is_cluster(client) else _ANY_SLOT
    lanes = _LANES.setdefault(client, {})
    lane = lanes.get(slot)
    if lane is None:
        lane = lanes[slot] = DirectLane(client, name, None if slot == _ANY_SLOT else slot_key)
    return lane


def close_lane(client: Redis) -> None:
    """Close `client`'s lanes, if it has any."""
    for lane in _LANES.pop(client, {}).values():
        lane.close()
