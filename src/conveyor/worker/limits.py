"""Rate limits the worker enforces itself: per worker process, and per rate-limit group (a job's `rate_key`).

The queue-wide limit and concurrency are BullMQ's own (fields of the queue's meta hash, enforced by its scripts
for every worker, Node ones included); see `Queue.apply_limits`.
"""

from __future__ import annotations

from redis.asyncio import Redis

from conveyor.config import RateLimit
from conveyor.redis.keys import ConveyorKeys


class WindowLimiter:
    """A fixed-window limit for this process: at most `limit.max` starts per `limit.duration_ms` window."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._window_start = 0
        self._count = 0

    def reserve(self, now_ms: int) -> int:
        """Count one start and return 0 when the limit allows it now; else the ms until it will (nothing counted)."""
        if now_ms - self._window_start >= self.limit.duration_ms:
            self._window_start, self._count = now_ms, 0
        if self._count < self.limit.max:
            self._count += 1
            return 0
        return self._window_start + self.limit.duration_ms - now_ms

    def release(self) -> None:
        """Give back a start counted by `reserve` that did not happen."""
        self._count = max(0, self._count - 1)


async def group_delay_ms(client: Redis, keys: ConveyorKeys, group: str, limit: RateLimit) -> int:
    """Count a start against a rate-limit group shared by every worker; 0 when allowed, else the ms until the
    group's window ends (the job should wait that long, without losing an attempt)."""
    key = keys.rate_group(group)
    pipe = client.pipeline(transaction=True)
    pipe.set(key, 0, px=limit.duration_ms, nx=True)  # opens the window; expires with it
    pipe.incr(key)
    pipe.pttl(key)
    _, count, ttl = await pipe.execute()
    return 0 if int(count) <= limit.max else max(1, int(ttl))


PRIORITY_SHIFT = 0x100000000  # BullMQ scores the prioritized set as priority * 2^32 + a counter


class Admission:
    """Whether this worker's fetcher may take a job now: its own rate limit, and priority lanes (the last
    `reserved_slots` free slots only take jobs of priority `reserved_priority` or higher)."""

    def __init__(
        self,
        client: Redis,
        prioritized_key: str,
        worker_limit: RateLimit | None,
        reserved_slots: int,
        reserved_priority: int,
    ) -> None:
        self.client = client
        self.prioritized_key = prioritized_key
        self.limiter = WindowLimiter(worker_limit) if worker_limit else None
        self.reserved_slots = reserved_slots
        self.reserved_priority = reserved_priority

    @property
    def restricts_fetch_next(self) -> bool:
        """Fetch-next bypasses the fetcher, so it is used only when the fetcher has nothing to decide."""
        return self.limiter is not None or self.reserved_slots > 0

    async def verdict(self, now_ms: int, free_slots: int) -> int | None:
        """0: fetch now; a positive number: wait that many ms (rate limit); None: wait for new work or a free slot
        (only reserved slots are free and no job of reserved priority waits)."""
        if self.limiter is not None and (wait := self.limiter.reserve(now_ms)):
            return wait
        if free_slots <= self.reserved_slots and not await self._reserved_job_waits():
            if self.limiter is not None:
                self.limiter.release()
            return None
        return 0

    def unused(self) -> None:
        """The fetch that `verdict` allowed came back empty: its rate-limit slot is not used."""
        if self.limiter is not None:
            self.limiter.release()

    async def _reserved_job_waits(self) -> bool:
        head = await self.client.zrange(self.prioritized_key, 0, 0, withscores=True)
        return bool(head) and int(head[0][1]) // PRIORITY_SHIFT <= self.reserved_priority
