"""Connection names BullMQ uses to find a queue's workers, and the CLIENT LIST rows that carry them.

BullMQ has no worker registry: a Node worker names its blocking connection `<prefix>:<base64(queue)>` (or
`<prefix>:<base64(queue)>:w:<worker name>`) with CLIENT SETNAME, and `Queue.getWorkers()` (hence Bull Board)
lists the connections of CLIENT LIST with such a name. Conveyor names its fetch connections the same way, with
the worker name marked `conveyor@<worker name>` (so Node tools see its workers as Conveyor's, and Conveyor never
takes one of its own connections for a Node worker, even while a worker shuts down), and reads the same names to
see Node's. CLIENT LIST describes one server: on a Redis Cluster a worker is seen only through the node its
connection is on.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

_UNSAFE = re.compile(r"\s")  # CLIENT SETNAME refuses spaces and newlines
CONVEYOR_MARK = "conveyor@"  # starts the worker name of a Conveyor worker's connection


@dataclass(frozen=True)
class BullmqWorkerConnection:
    """A connection named as a BullMQ worker's, as CLIENT LIST shows it."""

    queue: str
    worker_name: str  # "" for an unnamed Node worker
    client_id: str
    addr: str
    age_s: int
    idle_s: int


def bullmq_worker_name(prefix: str, queue: str, worker_name: str) -> str:
    """The connection name of the Conveyor worker `worker_name` serving `queue`, as a Node BullMQ Worker names
    its own: the name BullMQ shows is `conveyor@<worker name>` (whitespace replaced, which SETNAME refuses)."""
    encoded = base64.b64encode(queue.encode()).decode()
    return f"{prefix}:{encoded}:w:{CONVEYOR_MARK}{_UNSAFE.sub('_', worker_name)}"


def is_conveyor_worker(worker_name: str) -> bool:
    """Whether a worker name parsed from a connection name is a Conveyor worker's."""
    return worker_name.startswith(CONVEYOR_MARK)


def parse_bullmq_worker_name(prefix: str, name: str) -> tuple[str, str] | None:
    """`(queue, worker name)` of a connection name BullMQ's `getWorkers` would count, or None."""
    head = f"{prefix}:"
    if not name.startswith(head):
        return None
    encoded, sep, rest = name[len(head) :].partition(":")
    if sep and not rest.startswith("w:"):
        return None  # e.g. `:qe`, a QueueEvents connection
    try:
        queue = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not queue or base64.b64encode(queue.encode()).decode() != encoded:
        return None
    return queue, rest[2:]


async def bullmq_worker_connections(client: Redis, prefix: str) -> list[BullmqWorkerConnection]:
    """Every connection of this server named as a BullMQ worker's under `prefix` (none where CLIENT LIST is
    refused, as on some managed services)."""
    try:
        rows = await client.client_list()
    except ResponseError:
        return []
    if not isinstance(rows, list):  # e.g. a cluster client's per-node answer: not supported (see above)
        return []
    found = []
    for row in rows:
        parsed = parse_bullmq_worker_name(prefix, str(row.get("name", "")))
        if parsed is not None:
            found.append(
                BullmqWorkerConnection(
                    queue=parsed[0],
                    worker_name=parsed[1],
                    client_id=str(row.get("id", "")),
                    addr=str(row.get("addr", "")),
                    age_s=int(row.get("age", 0)),
                    idle_s=int(row.get("idle", 0)),
                )
            )
    return found
