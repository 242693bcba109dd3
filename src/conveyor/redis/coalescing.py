"""Script calls issued in the same event-loop turn go to Redis together, in one write and one round trip.

A busy worker finishes many jobs at nearly the same moment (every slot's handler returns, then records its
outcome). Sent one by one, each call pays redis-py's full per-command cost and its own round trip; coalesced,
they share one write and one read. Each caller still gets its own result or its own error. The batch goes over
the client's fast lane where it has one (see lane.py), else as a redis-py pipeline.

With a `ReplicaWait` (durable mode) the batch is a pipeline followed by one WAIT on its connection: the whole
batch waits once. On a shortfall each caller gets a `NotReplicatedError` holding its own reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from conveyor.redis.errors import CONNECTION_FAILURES
from conveyor.redis.lane import lane_for
from conveyor.redis.replication import NotReplicatedError, ReplicatedPipeline, ReplicaWait

_Call = tuple[AsyncScript, list[str], list[Any], asyncio.Future[Any]]


class ScriptCoalescer:
    """Sends the script calls made during one event-loop turn in a single pipeline."""

    def __init__(self, client: Redis, replica_wait: ReplicaWait | None = None) -> None:
        self.client = client
        self.replica_wait = replica_wait
        self.lane = lane_for(client)
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run `script` like `await script(keys=..., args=...)`, sharing the round trip with concurrent callers."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((script, list(keys), list(args), future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        if self.replica_wait is not None:
            await self._send_replicated(batch, self.replica_wait)
        elif not (self.lane.usable and await self._send_over_lane(batch)):
            await self._send_as_pipeline(batch)

    async def _send_replicated(self, batch: list[_Call], wait: ReplicaWait) -> None:
        write = ReplicatedPipeline(self.client, wait)
        try:
            for script, keys, args, _ in batch:
                await script(keys=keys, args=args, client=write.pipe)  # loads the script first if Redis lacks it
            results = await write.execute(raise_on_error=False)
        except NotReplicatedError as short:
            results = [
                result if isinstance(result, Exception) else NotReplicatedError([result], short.acknowledged, wait)
                for result in short.results
            ]
        except Exception as exc:
            results = [exc] * len(batch)
        for (*_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)

    async def _send_over_lane(self, batch: list[_Call]) -> bool:
        """Settle every call over the lane; False if its connection failed (the usual path then reconnects and
        retries)."""
        try:
            results = await self.lane.run_many([(script, keys, args) for script, keys, args, _ in batch])
        except CONNECTION_FAILURES:
            return False
        except Exception as exc:
            results = [exc] * len(batch)
        for (*_, future), result in zip(batch, results, strict=True):
            _resolve(future, result)
        return True

    async def _send_as_pipeline(self, batch: list[_Call]) -> None:
        if len(batch) == 1:
            script, keys, args, future = batch[0]
            await _settle(future, script(keys=keys, args=args))
            return
        pipe = self.client.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            # EVALSHA directly: redis-py's pipelined scripts would first send SCRIPT EXISTS on every execute.
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            results = [exc] * len(batch)
        for (script, keys, args, future), result in zip(batch, results, strict=True):
            if isinstance(result, NoScriptError):  # Redis restarted and forgot the script: load it, run it
                await _settle(future, script(keys=keys, args=args))
            else:
                _resolve(future, result)


def _resolve(future: asyncio.Future[Any], result: Any) -> None:
    if future.done():
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)


async def _settle(future: asyncio.Future[Any], call: Any) -> None:
    try:
        result = await call
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
        return
    if not future.done():
        future.set_result(result)
