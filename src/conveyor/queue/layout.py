"""Which BullMQ layouts Conveyor runs: a queue last written by an unsupported Node bullmq release is refused.

Every Node BullMQ `Queue` records `<library>:<version>` in the queue's meta hash (field `version`) when it is
created. bullmq 4.x keeps a job's attempts in `attemptsMade` where 5.x and later keep `atm`, and its scripts
differ in the markers that wake workers: run beside it, a Conveyor worker misses adds and stalls, so it refuses
to start instead. Python bullmq and Conveyor record no version: for a queue without one, the newest finished
jobs tell (a 4.x worker leaves `attemptsMade` and no `atm`).
"""

from __future__ import annotations

import logging
import re

from redis.asyncio import Redis

from conveyor.queue.errors import UnsupportedLayoutError
from conveyor.redis.keys import QueueKeys

log = logging.getLogger(__name__)

SUPPORTED_MAJORS = (5, 6)  # Node bullmq majors tested against (see the README's version table)
_VERSION = re.compile(r"^bullmq:(\d+)\.")


async def recorded_version(client: Redis, keys: QueueKeys) -> str | None:
    """The queue's meta `version`; without one, `bullmq:4.x` when its newest finished job was run by bullmq 4.x."""
    version = await client.hget(keys.meta, "version")
    if version is not None:
        return str(version)
    newest = [*await client.zrange(keys.failed, -1, -1), *await client.zrange(keys.completed, -1, -1)]
    for job_id in newest:
        has_legacy, has_atm = await client.hmget(keys.job(str(job_id)), ["attemptsMade", "atm"])
        if has_legacy is not None and has_atm is None:
            return "bullmq:4.x (no version recorded; its newest finished jobs hold attemptsMade, not atm)"
    return None


def node_major(version: str | None) -> int | None:
    """The major of a meta `version` written by Node bullmq (`bullmq:5.81.5` -> 5); None for anything else."""
    found = _VERSION.match(version or "")
    return int(found.group(1)) if found else None


def check_layout(queue: str, version: str | None) -> None:
    """Refuse a queue whose meta `version` is a Node bullmq older than the supported ones; warn for a newer one.

    Raises:
        UnsupportedLayoutError: the queue was last written by bullmq 4.x or older.
    """
    major = node_major(version)
    if major is None or major in SUPPORTED_MAJORS:
        return
    if major < SUPPORTED_MAJORS[0]:
        raise UnsupportedLayoutError(
            f"Queue {queue!r} was last written by Node {version} (its meta hash records it): Conveyor runs the "
            f"layout of bullmq {SUPPORTED_MAJORS[0]}.x-{SUPPORTED_MAJORS[-1]}.x, and beside bullmq "
            f"{major}.x its workers would miss jobs and stall. Upgrade the Node processes of this queue to bullmq "
            f"{SUPPORTED_MAJORS[0]} or newer (a Node Queue records its version when created); if none of "
            f"{major}.x is left, delete the stale record: HDEL <prefix>:{queue}:meta version."
        )
    log.warning(
        "queue %r was last written by Node %s, newer than the bullmq releases Conveyor is tested with (%s): "
        "check the README's compatibility table before relying on it",
        queue,
        version,
        ", ".join(f"{m}.x" for m in SUPPORTED_MAJORS),
    )
