"""The outbox of dead-letter alerts: one entry per new dead letter, written in the same script call that stores
the letter, then claimed, sent and acknowledged by whichever worker gets to it.

A sorted set scored by when to try next: claiming an entry pushes its score one lease ahead, so a worker that
dies while sending leaves it to be claimed again after the lease (delivery is at least once: a receiver that
must not see duplicates keys on `queue` + `jobId` + `failedAt`). A failed send is retried with exponential
backoff until the attempts run out; the alert is then dropped with an error in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import cast

from redis.asyncio import Redis

from conveyor.queue.dlq import parse_alert_member
from conveyor.redis.keys import ConveyorKeys

log = logging.getLogger(__name__)

# KEYS: alerts zset, attempts hash. ARGV: now, lease ms, batch size. Returns member, attempts, member, …
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), member)
  out[#out + 1] = member
  out[#out + 1] = redis.call('HINCRBY', KEYS[2], member, 1)
end
return out
"""


@dataclass(frozen=True, slots=True)
class ClaimedAlert:
    """An alert this process now holds for one lease: which dead letter, and which attempt this is."""

    member: str
    attempt: int

    @property
    def queue(self) -> str:
        """The dead letter's queue."""
        return parse_alert_member(self.member)[0]

    @property
    def job_id(self) -> str:
        """The dead letter's job id."""
        return parse_alert_member(self.member)[1]


def retry_delay_ms(attempt: int, base_ms: int = 1000, cap_ms: int = 300_000) -> int:
    """The wait after failed attempt number `attempt` (1 s, 2 s, 4 s … up to 5 min)."""
    return int(min(cap_ms, base_ms * 2 ** max(0, attempt - 1)))


class AlertOutbox:
    """Claims, acknowledges and reschedules the dead-letter alerts of one key prefix."""

    def __init__(self, client: Redis, keys: ConveyorKeys, *, lease_ms: int = 30_000, max_attempts: int = 8) -> None:
        self.client = client
        self.key = keys.dead_letter_alerts
        self.attempts_key = keys.dead_letter_alert_attempts
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        self._claim = client.register_script(_CLAIM)

    async def claim(self, now_ms: int, batch: int = 20) -> list[ClaimedAlert]:
        """Take up to `batch` alerts that are due, for one lease."""
        raw = await self._claim(keys=[self.key, self.attempts_key], args=[now_ms, self.lease_ms, batch])
        flat = cast("list[str]", raw or [])
        return [ClaimedAlert(str(member), int(attempt)) for member, attempt in zip(flat[::2], flat[1::2], strict=True)]

    async def done(self, alert: ClaimedAlert) -> None:
        """The alert was delivered: forget it."""
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.key, alert.member)
        pipe.hdel(self.attempts_key, alert.member)
        await pipe.execute()

    async def failed(self, alert: ClaimedAlert, now_ms: int, reason: str) -> bool:
        """A send failed: try again later, or drop it once the attempts ran out. True when it will be retried."""
        if alert.attempt >= self.max_attempts:
            log.error(
                "dead-letter alert for job %s of %s dropped after %d attempts: %s",
                alert.job_id,
                alert.queue,
                alert.attempt,
                reason,
            )
            await self.done(alert)
            return False
        await self.client.zadd(self.key, {alert.member: now_ms + retry_delay_ms(alert.attempt)})
        return True

    async def next_due_ms(self) -> int | None:
        """When the earliest alert is due (claimed ones: when their lease ends), or None when there is none."""
        first = cast("list[tuple[str, float]]", await self.client.zrange(self.key, 0, 0, withscores=True))
        return int(first[0][1]) if first else None

    async def pending(self) -> int:
        """How many alerts wait to be delivered."""
        return int(await self.client.zcard(self.key))
