"""The job as read back from Redis: state, data, progress, attempts, result, error and retry history."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

HISTORY_FIELD = "chist"  # Conveyor's retry history, a JSON list inside the job hash (removed with the job)
QUEUED_AT_FIELD = "cqat"  # when a retried job became due again (ms), for wait-time metrics
REFUSED_AT_FIELD = "crfa"  # when a worker without a handler for the job's type first put it back (ms)
REFUSALS_FIELD = "crfn"  # how many times workers without a handler for its type put it back
RANDOM_BYTES = 8  # the random part of a job id (16 hex digits)
RANDOM_POOL_BYTES = 4096  # random bytes read from the OS at a time: 512 ids


class _JobIds:
    """Job ids that sort in the order this process made them: the time in ms (12 hex digits), a sequence within
    the millisecond (4), then 16 random hex digits, so ids of different processes never collide. Sorting by id
    then lists jobs created (or finished) in the same millisecond in the order they were added, as BullMQ's
    counter ids did; across processes, same-millisecond ids are in no particular order.

    The random digits come from the OS's random source, read a few KiB at a time rather than once per id (a
    system call per add). A forked child drops what its parent had read, so the two never share random digits."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last_ms = 0
        self._sequence = 0
        self._lock = threading.Lock()
        self._random = b""
        self._used = 0

    def forget_random(self) -> None:
        """Drop the random bytes read ahead (in a forked child: its parent uses them)."""
        self._random, self._used = b"", 0

    def make(self) -> str:
        with self._lock:
            ms = int(self._clock() * 1000)
            if ms <= self._last_ms:  # same millisecond, or the clock stepped back: keep counting up
                ms, self._sequence = self._last_ms, self._sequence + 1
                if self._sequence > 0xFFFF:
                    ms, self._sequence = ms + 1, 0
            else:
                self._sequence = 0
            self._last_ms = ms
            while True:
                if self._used + RANDOM_BYTES > len(self._random):
                    self._random, self._used = os.urandom(RANDOM_POOL_BYTES), 0
                digits = self._random[self._used : self._used + RANDOM_BYTES].hex()
                self._used += RANDOM_BYTES
                job_id = f"{ms:012x}{self._sequence:04x}{digits}"
                if not job_id.isdigit():  # BullMQ refuses all-digit custom ids (its counter makes those)
                    return job_id


_job_ids = _JobIds()
if hasattr(os, "register_at_fork"):  # Unix only; where there is no fork there is nothing to drop
    os.register_at_fork(after_in_child=_job_ids.forget_random)


def new_job_id() -> str:
    """A job id made by the producer before its first try (32 hex digits, never all digits; see `_JobIds`).
    Every retry of the add re-sends it, and BullMQ's add script adds nothing for an id that exists, so a retried
    add never makes a second job."""
    return _job_ids.make()


class JobState(StrEnum):
    """Where a job is. A job reads as exactly one of WAITING, DELAYED, ACTIVE, COMPLETED, FAILED,
    WAITING_CHILDREN or UNKNOWN at any time.

    WAITING is every job waiting to run, wherever BullMQ keeps it: its `wait` list, its `prioritized` set
    (where every job with a priority, the default one included, goes) and its legacy `paused` list. PRIORITIZED
    and PAUSED are never a job's state: as filters they pick a part of the waiting jobs (those with a priority;
    every waiting job of a paused queue).
    """

    WAITING = "waiting"
    PRIORITIZED = "prioritized"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    FAILED = "failed"
    PAUSED = "paused"
    WAITING_CHILDREN = "waiting-children"
    UNKNOWN = "unknown"


NODE_WORKER = "Node BullMQ"  # the worker of an attempt known only from BullMQ's `stacktrace` field


WAITING_PARTS = frozenset({JobState.WAITING, JobState.PRIORITIZED, JobState.PAUSED})


def shown_state(state: str) -> JobState:
    """The state a job reads as, from a BullMQ state name: its waiting parts (`prioritized`, `paused`) are
    WAITING."""
    return JobState.WAITING if state in WAITING_PARTS else JobState(state)


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One failed attempt: what went wrong, where, when, on which worker. `failed_at` is None for an attempt a
    Node BullMQ worker failed before the last one (BullMQ records no time per attempt)."""

    attempt: int
    error: str
    stacktrace: str
    failed_at: datetime | None
    worker: str

    def to_json(self) -> dict[str, Any]:
        """The record as stored in the job hash."""
        return {
            "attempt": self.attempt,
            "error": self.error,
            "stacktrace": self.stacktrace,
            "at": int(self.failed_at.timestamp() * 1000) if self.failed_at else None,
            "worker": self.worker,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AttemptRecord:
        """Parse a stored record."""
        return cls(
            attempt=int(raw.get("attempt", 0)),
            error=str(raw.get("error", "")),
            stacktrace=str(raw.get("stacktrace", "")),
            failed_at=from_ms(raw.get("at")),
            worker=str(raw.get("worker", "")),
        )


def from_ms(value: Any) -> datetime | None:
    """A BullMQ millisecond timestamp as an aware datetime (None for missing/zero, or not a time)."""
    if value in (None, "", "0", 0):
        return None
    try:
        return datetime.fromtimestamp(int(float(value)) / 1000, UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # a malformed hash is still shown, not a crash
        return None


def _int(value: Any) -> int:
    """An integer field of a job hash; 0 when missing or malformed (the worker fails such a job)."""
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _json(value: str | None, default: Any = None) -> Any:
    if value is None or value == "":
        return default
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_history(raw: str | None) -> list[AttemptRecord]:
    """The retry history stored in a job hash (empty if it is malformed), numbered by `numbered`."""
    items = _json(raw, [])
    try:
        return numbered([AttemptRecord.from_json(item) for item in items]) if isinstance(items, list) else []
    except (AttributeError, TypeError, ValueError):
        return []


def merged_history(fields: dict[str, str]) -> list[AttemptRecord]:
    """The retry history of a job whichever runtime ran it: Conveyor's records, plus one per failed attempt
    BullMQ's `stacktrace` field holds that no record covers (attempts a Node worker failed). A Node attempt is
    numbered from the attempts made, its error is the first line of its stack; only the last attempt has a time
    (the job's `finishedOn`, or `processedOn` while it is retried) and a worker (`pb`, when the worker is named)."""
    ours = parse_history(fields.get(HISTORY_FIELD))
    covered = {record.stacktrace for record in ours}
    stacks = _json(fields.get("stacktrace"), [])
    theirs = [s for s in stacks if isinstance(s, str) and s not in covered] if isinstance(stacks, list) else []
    if not theirs:
        return ours
    made = _int(fields.get("atm") or fields.get("attemptsMade"))
    taken = {record.attempt for record in ours}
    numbers = [n for n in range(1, max(made, len(ours) + len(theirs)) + 1) if n not in taken][-len(theirs) :]
    last = max([numbers[-1], *taken])
    at = from_ms(fields.get("finishedOn") or fields.get("processedOn"))
    records = [
        AttemptRecord(
            attempt=number,
            error=stack.strip().splitlines()[0] if stack.strip() else "",
            stacktrace=stack,
            failed_at=at if number == last else None,
            worker=f"{NODE_WORKER} {fields['pb']}" if number == last and fields.get("pb") else NODE_WORKER,
        )
        for number, stack in zip(numbers, theirs, strict=True)
    ]
    return sorted([*ours, *records], key=lambda record: record.attempt)


def numbered(records: list[AttemptRecord]) -> list[AttemptRecord]:
    """The records numbered across retries: a retry (`conveyor retry`) starts BullMQ's attempt count over, so
    a record whose number does not follow the one before it is numbered right after it (runs 1, 2, 3, …)."""
    result: list[AttemptRecord] = []
    last = 0
    for record in records:
        number = record.attempt if record.attempt > last else last + 1
        result.append(record if number == record.attempt else replace(record, attempt=number))
        last = number
    return result


@dataclass(frozen=True, slots=True)
class Job:
    """A snapshot of one job. Read it with `Queue.get_job`; it does not change when the job does."""

    id: str
    queue: str
    type: str
    data: Any
    options: dict[str, Any]
    state: JobState
    progress: Any
    attempts_made: int
    attempts_started: int
    max_attempts: int
    priority: int
    created_at: datetime | None
    processed_at: datetime | None
    finished_at: datetime | None
    delay_until: datetime | None
    result: Any
    failed_reason: str | None
    history: list[AttemptRecord] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    worker: str | None = None

    @classmethod
    def from_hash(
        cls, queue: str, job_id: str, fields: dict[str, str], state: JobState, logs: list[str] | None = None
    ) -> Job:
        """Build a job from its Redis hash (as BullMQ writes it)."""
        opts = _json(fields.get("opts"), {}) or {}
        opts = opts if isinstance(opts, dict) else {}
        created = from_ms(fields.get("timestamp"))
        delay = _int(fields.get("delay"))
        return cls(
            id=job_id,
            queue=queue,
            type=fields.get("name", ""),
            data=_json(fields.get("data"), {}),
            options=opts,
            state=state,
            progress=_json(fields.get("progress"), 0),
            attempts_made=_int(fields.get("atm") or fields.get("attemptsMade")),
            attempts_started=_int(fields.get("ats")),
            max_attempts=_int(opts.get("attempts")) or 1,
            priority=_int(fields.get("priority")),
            created_at=created,
            processed_at=from_ms(fields.get("processedOn")),
            finished_at=from_ms(fields.get("finishedOn")),
            delay_until=from_ms(int(created.timestamp() * 1000) + delay) if created and delay else None,
            result=_json(fields.get("returnvalue")),
            failed_reason=fields.get("failedReason") or None,
            history=merged_history(fields),
            logs=logs or [],
            worker=fields.get("pb"),
        )
