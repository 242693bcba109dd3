"""A queue's queue-wide limits, shared with every runtime on the queue.

BullMQ keeps a queue's rate limit (`max`, `duration`) and global concurrency (`concurrency`) in its meta hash,
where its scripts enforce them for every worker, Conveyor's and Node's alike, and where Node's
`setGlobalRateLimit` / `setGlobalConcurrency` write them. Conveyor writes only the limits its configuration sets,
never deletes one it did not configure, and warns when its configuration replaces a different value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conveyor.config import RateLimit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueLimits:
    """Queue-wide limits; None where there is none."""

    rate_limit: RateLimit | None = None
    global_concurrency: int | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> QueueLimits:
        """The limits a queue's meta hash holds (a malformed field counts as none)."""
        rate_limit = None
        try:
            if meta.get("max") and meta.get("duration"):
                rate_limit = RateLimit(max=int(meta["max"]), duration_ms=int(meta["duration"]))
        except ValueError:
            rate_limit = None
        concurrency = meta.get("concurrency")
        return cls(rate_limit, int(concurrency) if concurrency and concurrency.isdigit() else None)

    def meta_fields(self) -> dict[str, int]:
        """The meta hash fields that write these limits (none for a limit that is None)."""
        fields: dict[str, int] = {}
        if self.rate_limit is not None:
            fields.update(max=self.rate_limit.max, duration=self.rate_limit.duration_ms)
        if self.global_concurrency is not None:
            fields["concurrency"] = self.global_concurrency
        return fields

    def over(self, other: QueueLimits) -> QueueLimits:
        """These limits, with `other`'s where these have none."""
        return QueueLimits(
            self.rate_limit if self.rate_limit is not None else other.rate_limit,
            self.global_concurrency if self.global_concurrency is not None else other.global_concurrency,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `{"rate_limit": {"max", "duration_ms"} or None, "global_concurrency": int or None}`."""
        rate = self.rate_limit.model_dump() if self.rate_limit is not None else None
        return {"rate_limit": rate, "global_concurrency": self.global_concurrency}

    def describe(self) -> str:
        """`10 per 1000 ms, concurrency 3`, or `none`."""
        parts = []
        if self.rate_limit is not None:
            parts.append(f"{self.rate_limit.max} per {self.rate_limit.duration_ms} ms")
        if self.global_concurrency is not None:
            parts.append(f"concurrency {self.global_concurrency}")
        return ", ".join(parts) or "none"


def disagreements(queue: str, configured: QueueLimits, in_force: QueueLimits) -> list[str]:
    """One message per configured limit that differs from the one Redis holds (set by another producer, an older
    configuration or Node); nothing for a limit that is not configured, or not yet in Redis."""
    messages = []
    if configured.rate_limit is not None and in_force.rate_limit not in (None, configured.rate_limit):
        messages.append(
            f"queue {queue!r}: Redis holds the rate limit {QueueLimits(in_force.rate_limit).describe()} (set "
            f"elsewhere: another deployment, an older configuration or Node setGlobalRateLimit); the configuration "
            f"(CONVEYOR_QUEUES rate_limit) sets {QueueLimits(configured.rate_limit).describe()}, which replaces it. "
            f"Make both agree, or remove rate_limit from this configuration to keep the one in Redis."
        )
    if configured.global_concurrency is not None and in_force.global_concurrency not in (
        None,
        configured.global_concurrency,
    ):
        messages.append(
            f"queue {queue!r}: Redis holds the global concurrency {in_force.global_concurrency} (set elsewhere: "
            f"another deployment, an older configuration or Node setGlobalConcurrency); the configuration "
            f"(CONVEYOR_QUEUES global_concurrency) sets {configured.global_concurrency}, which replaces it. Make "
            f"both agree, or remove global_concurrency from this configuration to keep the one in Redis."
        )
    return messages
