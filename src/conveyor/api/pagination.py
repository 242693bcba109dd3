"""Relay cursors for `jobs`: an opaque, URL-safe encoding of a scan position (see `conveyor.queue.search`).

A cursor names where a job sits (its state's storage, its score or neighbour, its id), not an offset, so it
stays valid while jobs move; a job that changed state meanwhile may show up again in its new state or not at
all, but no job that stayed put is skipped or repeated.
"""

from __future__ import annotations

import base64
import binascii
import json

from conveyor.api.errors import ApiError, ErrorCode
from conveyor.api.job_node import JobNode
from conveyor.api.types import JobConnection, JobEdge, PageInfo
from conveyor.queue.search import JobPage, ScanPosition

VERSION = 1
MAX_CURSOR_CHARS = 2048


def encode_cursor(queue: str, position: ScanPosition) -> str:
    """The cursor of a position in a queue."""
    raw = [VERSION, queue, position.area, position.job_id, position.score, position.next_id]
    return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(queue: str, cursor: str) -> ScanPosition:
    """The position a cursor names.

    Raises:
        ApiError: BAD_CURSOR when the cursor is malformed, from another version, or for another queue.
    """
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        version, cursor_queue, area, job_id, score, next_id = raw
        if version != VERSION or not isinstance(job_id, str) or not isinstance(area, str):
            raise ValueError("unknown cursor version")
        if not isinstance(score, int | float | None) or not isinstance(next_id, str | None):
            raise ValueError("bad cursor fields")
        position = ScanPosition(area, job_id, float(score) if score is not None else None, next_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ApiError(
            ErrorCode.BAD_CURSOR, "Invalid cursor: pass an `endCursor` or edge `cursor` from a previous page."
        ) from exc
    if cursor_queue != queue:
        raise ApiError(ErrorCode.BAD_CURSOR, f"This cursor belongs to queue {cursor_queue!r}, not {queue!r}.")
    return position


def connection(queue: str, page: JobPage) -> JobConnection:
    """A Relay connection of a scanned page; `endCursor` is where the scan stopped (it may lie past the last
    edge when a filter skipped jobs)."""
    edges = [
        JobEdge(cursor=encode_cursor(queue, position), node=JobNode.of(job))
        for job, position in zip(page.jobs, page.positions, strict=True)
    ]
    end = encode_cursor(queue, page.end) if page.end is not None else None
    info = PageInfo(
        has_next_page=page.has_more,
        has_previous_page=False,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=end,
    )
    return JobConnection(edges=edges, page_info=info)
