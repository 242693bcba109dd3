"""Fan-out and fan-in without BullMQ flows: a parent job adds children, then waits for all of them.

Children record how they ended in a Redis hash owned by their parent (child id → outcome, e.g. `indexed` or
`unreadable`). Writing a field is idempotent, so a child that runs twice (a retry after a lost lock) is
counted once. The parent polls the hash's length (O(1) in Redis and in the parent, however many children)
at a modest interval, reports progress, and reads the outcomes once, at the end. Outcomes a child cannot
record itself — killed by a timeout, dropped after too many stalls, removed by hand — are found by asking the
queue for the state of children that stay unaccounted for while nothing progresses.

The parent occupies one slot of its queue while it waits, so the queue needs a concurrency of at least 2
(the `indexing` queue's default is 5).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from conveyor.queue.job import JobState
from conveyor.queue.queue import Queue
from conveyor.redis.keys import ConveyorKeys

log = logging.getLogger(__name__)

TRACKER_TTL_S = 7 * 24 * 3600  # a parent that died for good leaves no hash behind for longer than this
RECONCILE_AFTER_S = 5.0  # with no progress for this long, ask the queue about unaccounted children
DONE, FAILED, LOST = "done", "failed", "lost"


def fanout_key(prefix: str, queue: str, parent_id: str) -> str:
    """The hash of a parent job's finished children (see `ConveyorKeys.fanout`)."""
    return ConveyorKeys(prefix).fanout(queue, parent_id)


def child_job_id(parent_id: str, item: str) -> str:
    """A child's job id, derived from its parent and its item (e.g. a file path), so that a retried parent
    re-adds the same ids (a no-op for children that still exist) whatever order its items come in."""
    digest = hashlib.sha1(item.encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{parent_id}-{digest}"


class FanoutTracker:
    """The finished children of one parent job."""

    def __init__(self, client: Redis, key: str) -> None:
        self.client = client
        self.key = key

    async def record(self, child_id: str, outcome: str) -> None:
        """Note that a child ended (`done`, `failed` or `lost`); recording it again changes nothing."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key, child_id, outcome)
        pipe.expire(self.key, TRACKER_TTL_S)
        await pipe.execute()

    async def record_if_absent(self, child_id: str, outcome: str) -> bool:
        """Note an outcome the parent inferred, unless the child recorded its own meanwhile."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hsetnx(self.key, child_id, outcome)
        pipe.expire(self.key, TRACKER_TTL_S)
        written, _ = await pipe.execute()
        return bool(written)

    async def finished(self) -> int:
        """How many children have recorded an outcome."""
        return int(await self.client.hlen(self.key))

    async def outcomes(self) -> dict[str, str]:
        """Every recorded child and how it ended."""
        raw = await self.client.hgetall(self.key)  # the client decodes responses: keys and values are str
        return {str(child): str(outcome) for child, outcome in raw.items()}

    async def discard(self) -> None:
        """Delete the record once the parent has its result."""
        await self.client.delete(self.key)


@dataclass(frozen=True, slots=True)
class FanoutProgress:
    """How far the children of a parent are."""

    total: int
    done: int
    failed: int

    @property
    def finished(self) -> int:
        """Children that ended either way."""
        return self.done + self.failed

    @property
    def percent(self) -> int:
        """Whole percent of children that ended (100 when there are none)."""
        return 100 if self.total == 0 else int(100 * self.finished / self.total)


def count(
    children: Mapping[str, str], outcomes: Mapping[str, str], failures: frozenset[str] = frozenset()
) -> FanoutProgress:
    """Progress of `children` (child id → item) given the recorded outcomes: `failed`, `lost` and any of
    `failures` count as failed, every other recorded outcome as done."""
    failed_outcomes = failures | {FAILED, LOST}
    recorded = [outcomes[child] for child in children if child in outcomes]
    failed = sum(1 for outcome in recorded if outcome in failed_outcomes)
    return FanoutProgress(len(children), len(recorded) - failed, failed)


async def wait_for_children(
    queue: Queue,
    tracker: FanoutTracker,
    children: Mapping[str, str],
    *,
    poll_s: float,
    report: Callable[[FanoutProgress], None],
    failures: frozenset[str] = frozenset(),
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, str]:
    """Poll until every child has ended, calling `report` whenever progress changes; returns the outcomes.

    While children run, progress counts finished ones as `done` (one HLEN per poll); the split into done and
    failed is exact in the last report. Cancellation of the waiting task (timeout, cancel) propagates;
    children keep running and recording.
    """
    total, last_finished, last_change = len(children), -1, clock()
    while True:
        finished = await tracker.finished()
        if finished != last_finished:
            last_finished, last_change = finished, clock()
            report(FanoutProgress(total, min(finished, total), 0))
        stalled = clock() - last_change >= RECONCILE_AFTER_S
        if finished >= total or stalled:  # (the hash may hold children of an earlier run of the parent)
            outcomes = await tracker.outcomes()
            progress = count(children, outcomes, failures)
            if progress.finished >= total:
                report(progress)
                return outcomes
            if stalled:
                await reconcile(queue, tracker, [c for c in children if c not in outcomes])
                last_change = clock()
        await asyncio.sleep(poll_s)


async def reconcile(queue: Queue, tracker: FanoutTracker, pending: list[str]) -> int:
    """Record children that ended without recording it: failed ones, and ones that no longer exist.

    Returns how many were recorded.
    """
    recorded = 0
    for child in pending:
        state = await queue.state_of(child)
        # Unknown: the job is gone without reporting. A completed child always reports before it completes,
        # so the job was removed or cleared by hand; it counts as lost.
        inferred = {JobState.FAILED: FAILED, JobState.UNKNOWN: LOST}.get(state)
        if inferred is not None and await tracker.record_if_absent(child, inferred):
            log.warning("child job %s of %s ended without reporting (%s)", child, tracker.key, state.value)
            recorded += 1
    return recorded
