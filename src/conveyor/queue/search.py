"""Browsing a queue's jobs: a filtered scan across states that resumes from a position, recent jobs, and
retrying the failed jobs that match a filter.

A position names where a job sits rather than how many came before it, so paging stays stable while jobs
move: finished and scheduled jobs are in sorted sets and a position there is `(score, id)` (finish time,
due time or priority counter); waiting and active jobs are in lists, where a position is the job's id plus
the id of the job after it, found again with `LPOS` (new jobs enter the lists at the other end and
consumed jobs leave behind the reader, so neither shifts what is still to come).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from conveyor.queue.errors import JobStateError
from conveyor.queue.job import Job, JobState
from conveyor.queue.queue import Queue
from conveyor.redis.script_errors import JobNotInStateError


@dataclass(frozen=True)
class Area:
    """Where BullMQ stores jobs of one state: a list (oldest first) or a sorted set."""

    name: str
    is_list: bool
    descending: bool = False


# The order in which a scan visits the areas; a position names its area, so this order is part of cursors.
AREAS: tuple[Area, ...] = (
    Area("active", is_list=True),
    Area("wait", is_list=True),
    Area("paused", is_list=True),
    Area("prioritized", is_list=False),
    Area("delayed", is_list=False),
    Area("waiting-children", is_list=False),
    Area("completed", is_list=False, descending=True),
    Area("failed", is_list=False, descending=True),
)
AREA_NAMES = tuple(area.name for area in AREAS)
_FIXED_STATES = {
    "active": JobState.ACTIVE,
    "prioritized": JobState.WAITING,
    "delayed": JobState.DELAYED,
    "waiting-children": JobState.WAITING_CHILDREN,
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
}
_CHUNK = 200


@dataclass(frozen=True)
class JobFilter:
    """Which jobs a scan returns: some states (all when empty), one type, and a text to look for
    (case-insensitive, in the id, type, data and failure reason)."""

    states: tuple[JobState, ...] = ()
    job_type: str | None = None
    text: str | None = None

    def matches(self, job: Job) -> bool:
        """True when the job's type and text match (its state is the scan's business)."""
        if self.job_type is not None and job.type != self.job_type:
            return False
        if not self.text:
            return True
        needle = self.text.lower()
        haystack = (job.id, job.type, _text(job.data), job.failed_reason or "")
        return any(needle in part.lower() for part in haystack)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ScanPosition:
    """Where a scan stands: a job of an area, by score (sorted sets) or by its and its successor's ids (lists)."""

    area: str
    job_id: str
    score: float | None = None
    next_id: str | None = None

    def __post_init__(self) -> None:
        if self.area not in AREA_NAMES:
            raise ValueError(f"unknown area {self.area!r}")
        if (self.score is None) != (self.area in ("active", "wait", "paused")):
            raise ValueError("sorted-set positions need a score and list positions must not have one")
        if self.score is not None and not math.isfinite(self.score):
            raise ValueError("score must be finite")


@dataclass
class JobPage:
    """One page of a scan: the matching jobs with their positions, where the scan stopped, and whether more
    jobs may match after it."""

    jobs: list[Job] = field(default_factory=list)
    positions: list[ScanPosition] = field(default_factory=list)
    end: ScanPosition | None = None
    has_more: bool = False


def areas_for(states: tuple[JobState, ...], paused: bool) -> list[Area]:
    """The areas holding jobs of the given states (all when empty); see `JobState` for what is waiting."""
    wanted = set(states) or set(JobState) - {JobState.UNKNOWN}
    names = {name for name, state in _FIXED_STATES.items() if state in wanted}
    if JobState.WAITING in wanted or (JobState.PAUSED in wanted and paused):
        names.update(("wait", "paused", "prioritized"))
    if JobState.PRIORITIZED in wanted:
        names.add("prioritized")
    if JobState.PAUSED in wanted:
        names.add("paused")  # BullMQ's legacy paused list: jobs a resume has yet to move back
    return [area for area in AREAS if area.name in names]


def _state_of(area: Area) -> JobState:
    return _FIXED_STATES.get(area.name, JobState.WAITING)


class _Scan:
    """One scan call: visits areas in order from a position, collecting matches within a budget."""

    def __init__(self, queue: Queue, job_filter: JobFilter, limit: int, budget: int) -> None:
        self.queue = queue
        self.filter = job_filter
        self.limit = limit
        self.budget = budget
        self.page = JobPage()
        self.examined = 0

    async def run(self, areas: list[Area], after: ScanPosition | None) -> JobPage:
        if after is not None:
            order = AREA_NAMES.index(after.area)
            areas = [area for area in areas if AREA_NAMES.index(area.name) >= order]
        for area in areas:
            resume = after if after is not None and after.area == area.name else None
            settled = await (self._list(area, resume) if area.is_list else self._zset(area, resume))
            if settled:
                return self.page
        self.page.end = self.page.positions[-1] if self.page.positions else after
        return self.page

    async def _visit(self, area: Area, ids: list[str], positions: list[ScanPosition]) -> bool:
        """Examine a chunk; True when the page is settled (full and one more match seen, or budget spent)."""
        rows = await _hashes(self.queue, ids)
        state = _state_of(area)
        page = self.page
        for job_id, row, position in zip(ids, rows, positions, strict=True):
            self.examined += 1
            job = Job.from_hash(self.queue.name, job_id, row, state) if row else None
            if job is not None and self.filter.matches(job):
                if len(page.jobs) >= self.limit:
                    page.has_more, page.end = True, page.positions[-1]
                    return True
                page.jobs.append(job)
                page.positions.append(position)
            if self.examined >= self.budget:
                page.has_more = True
                page.end = page.positions[-1] if len(page.jobs) >= self.limit else position
                return True
        return False

    async def _zset(self, area: Area, after: ScanPosition | None) -> bool:
        key = self.queue.keys.of(area.name)
        offset = 0
        while True:
            entries = await _zrange(self.queue, key, area.descending, after, offset)
            fresh = [(str(m), float(s)) for m, s in entries if _beyond(area, after, str(m), float(s))]
            if fresh:
                positions = [ScanPosition(area.name, m, score=s) for m, s in fresh]
                if await self._visit(area, [m for m, _ in fresh], positions):
                    return True
                after, offset = positions[-1], 0  # re-anchor on a position: robust to concurrent changes
            elif len(entries) == _CHUNK:
                offset += _CHUNK  # a run of ties at the anchor's score, all already seen
            if len(entries) < _CHUNK:
                return False

    async def _list(self, area: Area, after: ScanPosition | None) -> bool:
        key = self.queue.keys.of(area.name)
        index = await _list_start(self.queue, key, after)
        seen: set[str] = set()
        while index >= 0:
            low = max(0, index - _CHUNK + 1)
            ids = [str(i) for i in reversed(await self.queue.client.lrange(key, low, index))]
            fresh = [job_id for job_id in ids if job_id not in seen]  # jobs pushed meanwhile shift indexes
            seen.update(fresh)
            positions = [
                ScanPosition(area.name, job_id, next_id=fresh[n + 1] if n + 1 < len(fresh) else None)
                for n, job_id in enumerate(fresh)
            ]
            if fresh and await self._visit(area, fresh, positions):
                return True
            index = low - 1
        return False


def _beyond(area: Area, after: ScanPosition | None, member: str, score: float) -> bool:
    if after is None or after.score is None:
        return True
    if area.descending:
        return (score, member) < (after.score, after.job_id)
    return (score, member) > (after.score, after.job_id)


async def _zrange(queue: Queue, key: str, descending: bool, after: ScanPosition | None, offset: int) -> list[Any]:
    bound = _score_text(after.score) if after is not None and after.score is not None else None
    if descending:
        start, end = bound or "+inf", "-inf"
    else:
        start, end = bound or "-inf", "+inf"
    entries: list[Any] = await queue.client.zrange(
        key, start, end, desc=descending, byscore=True, offset=offset, num=_CHUNK, withscores=True
    )
    return entries


def _score_text(score: float) -> str:
    return str(int(score)) if score.is_integer() else repr(score)


async def _list_start(queue: Queue, key: str, after: ScanPosition | None) -> int:
    """The index (from the left, where new jobs enter) of the first job to examine, scanning leftwards."""
    if after is not None:
        if after.next_id is not None:
            index: Any = await queue.client.lpos(key, after.next_id)
            if index is not None:
                return int(index)
        index = await queue.client.lpos(key, after.job_id)
        if index is not None:
            return int(index) - 1
    return int(await queue.client.llen(key)) - 1


async def _hashes(queue: Queue, ids: list[str]) -> list[dict[str, str]]:
    pipe = queue.client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hgetall(queue.keys.job(job_id))
    rows: list[dict[str, str]] = await pipe.execute()
    return rows


async def scan_jobs(
    queue: Queue, job_filter: JobFilter, *, after: ScanPosition | None = None, limit: int = 50, budget: int = 5000
) -> JobPage:
    """Up to `limit` jobs matching the filter, after a position, in area order (active, waiting (`wait`, then
    `prioritized`), delayed, waiting for children, then completed and failed newest first).

    At most `budget` jobs are examined per call: a page may then hold fewer than `limit` jobs with
    `has_more` set, and `end` is where to resume (it may name a job that did not match).
    """
    paused = await queue.is_paused()
    scan = _Scan(queue, job_filter, limit, max(budget, limit + 1))
    return await scan.run(areas_for(job_filter.states, paused), after)


async def recent_jobs(queue: Queue, limit: int = 20) -> list[Job]:
    """The most recently created jobs, newest first, from the newest entries of every state."""
    candidates: list[Job] = []
    for area in AREAS:
        key = queue.keys.of(area.name)
        if area.is_list:
            ids = [str(i) for i in await queue.client.lrange(key, 0, limit - 1)]
        else:
            ids = [str(i) for i in await queue.client.zrange(key, 0, limit - 1, desc=True)]
        rows = await _hashes(queue, ids)
        state = _state_of(area)
        candidates += [Job.from_hash(queue.name, i, row, state) for i, row in zip(ids, rows, strict=True) if row]
    candidates.sort(key=lambda job: (job.created_at.timestamp() if job.created_at else 0.0, job.id), reverse=True)
    return candidates[:limit]


@dataclass(frozen=True)
class RetryReport:
    """What `retry_where` found and did."""

    matched: int
    retried: int
    skipped: int
    job_ids: list[str]
    truncated: bool


RETRYABLE = (JobState.FAILED, JobState.COMPLETED)


async def retry_where(queue: Queue, job_filter: JobFilter, *, dry_run: bool, limit: int = 1000) -> RetryReport:
    """Move up to `limit` failed (or completed) jobs matching the filter back to waiting; with `dry_run`, only
    count them. Jobs that change state meanwhile are skipped, not errors.

    Raises:
        JobStateError: the filter names a state other than failed or completed.
    """
    states = job_filter.states or (JobState.FAILED,)
    if any(state not in RETRYABLE for state in states):
        raise JobStateError("Only failed or completed jobs can be retried; filter on FAILED and/or COMPLETED.")
    scoped = JobFilter(states, job_filter.job_type, job_filter.text)
    found: list[Job] = []
    after: ScanPosition | None = None
    truncated = False
    while True:
        page = await scan_jobs(queue, scoped, after=after, limit=min(500, limit + 1 - len(found)))
        found += page.jobs
        if len(found) > limit:
            found, truncated = found[:limit], True
            break
        if not page.has_more:
            break
        after = page.end
    retried = 0 if dry_run else await _reprocess(queue, found)
    skipped = 0 if dry_run else len(found) - retried
    return RetryReport(len(found), retried, skipped, [job.id for job in found], truncated)


async def _reprocess(queue: Queue, jobs: list[Job]) -> int:
    retried = 0
    for job in jobs:
        try:
            await queue.scripts.reprocess_job(job.id, job.state.value)
        except JobNotInStateError:
            continue
        retried += 1
    return retried
