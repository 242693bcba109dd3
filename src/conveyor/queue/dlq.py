"""The dead-letter queue: a per-queue store of jobs that failed for good, to inspect, replay or purge.

A job that exhausts its attempts or fails with a non-retryable error is copied here — payload, options, error
history and stack traces — by the worker that failed it (`conveyor.worker.dead_letters`), or, if that worker
died in between, by the reconciliation sweep (`DeadLetters.reconcile`) that checks the queue's failed set.
The copy is independent of the job itself, so it survives the queue's retention (`keep_failed`).

Storage, under `<prefix>:conveyor:dlq:<queue>`: a sorted set of job ids by dead-letter time and a hash of
their JSON copies. One job id holds one letter: recording the same failure again (hook and sweep both saw it)
changes nothing, which is what makes the alert fire once per dead letter. Replaying a letter enqueues a fresh
job (`<id>-r<failure time>`) from the copy and removes the letter; if that job fails for good too, it comes back as a
letter of its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from conveyor.config import BackoffSettings
from conveyor.queue.errors import JobNotFoundError, QueueError
from conveyor.queue.job import AttemptRecord, Job, JobState, from_ms, parse_history
from conveyor.queue.options import JobOptions
from conveyor.queue.queue import Queue
from conveyor.queue.source import QueueSource

DEFAULT_MAX_ENTRIES = 10_000  # per queue; the oldest letters are dropped beyond it
MAX_SELECTION = 10_000  # letters one replay or purge may act on
_CHUNK = 200

# KEYS: index zset, entries hash, alerts zset. ARGV: job id, letter JSON, mark (failure time), now (ms),
# max entries, alert? (1/0), alert member. Returns 1 when the letter is new, 0 when it was already recorded.
_RECORD = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then
  local ok, doc = pcall(cjson.decode, existing)
  if ok and doc['mark'] == ARGV[3] then return 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
if ARGV[6] == '1' then redis.call('ZADD', KEYS[3], ARGV[4], ARGV[7]) end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if excess > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[1], 0, excess - 1)) do
    redis.call('HDEL', KEYS[2], old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
return 1
"""


class DeadLetterNotFoundError(JobNotFoundError):
    """No dead letter for that job id in that queue."""

    def __init__(self, queue: str, job_id: str) -> None:
        super().__init__(queue, job_id)
        hint = f"list them with `conveyor dlq list {queue}`"
        self.args = (f"No dead letter for job {job_id!r} in queue {queue!r}; {hint}.",)


class DeadLetterSelectionError(QueueError):
    """A replay or purge was asked without saying which letters (ids, a filter, or everything)."""


def _ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment is not None else None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A copy of a job that failed for good, as it was when it failed."""

    queue: str
    job_id: str
    type: str
    data: Any
    options: dict[str, Any]
    failed_reason: str
    history: list[AttemptRecord]
    stacktrace: list[str]
    attempts_made: int
    created_at: datetime | None
    failed_at: datetime
    dead_lettered_at: datetime
    worker: str | None = None
    parent: str | None = None  # the parent's job key when the job was part of a flow

    @property
    def mark(self) -> str:
        """Identifies one failure of this job id (its finish time): the same failure is recorded once."""
        return str(_ms(self.failed_at))

    @classmethod
    def from_job(cls, job: Job, *, failed_at_ms: int, now_ms: int, stacktrace: Sequence[str] = ()) -> DeadLetter:
        """The letter of a failed job read from Redis (`Queue.get_job` or `Job.from_hash`)."""
        return cls(
            queue=job.queue,
            job_id=job.id,
            type=job.type,
            data=job.data,
            options=dict(job.options),
            failed_reason=job.failed_reason or "",
            history=list(job.history),
            stacktrace=list(stacktrace),
            attempts_made=job.attempts_made,
            created_at=job.created_at,
            failed_at=datetime.fromtimestamp(failed_at_ms / 1000, UTC),
            dead_lettered_at=datetime.fromtimestamp(now_ms / 1000, UTC),
            worker=job.worker,
        )

    @classmethod
    def from_hash(cls, queue: str, job_id: str, fields: dict[str, str], now_ms: int) -> DeadLetter:
        """The letter of a failed job from its hash as BullMQ and the worker left it."""
        job = Job.from_hash(queue, job_id, fields, JobState.FAILED)
        stack = _json_list(fields.get("stacktrace"))
        failed_at = int(fields.get("finishedOn") or now_ms)
        letter = cls.from_job(job, failed_at_ms=failed_at, now_ms=now_ms, stacktrace=stack)
        return replace(letter, parent=fields.get("parentKey") or None)

    def to_json(self) -> dict[str, Any]:
        """The letter as stored."""
        return {
            "queue": self.queue,
            "id": self.job_id,
            "type": self.type,
            "data": self.data,
            "options": self.options,
            "failedReason": self.failed_reason,
            "history": [record.to_json() for record in self.history],
            "stacktrace": self.stacktrace,
            "attemptsMade": self.attempts_made,
            "createdAt": _ms(self.created_at),
            "failedAt": _ms(self.failed_at),
            "deadLetteredAt": _ms(self.dead_lettered_at),
            "worker": self.worker,
            "parent": self.parent,
            "mark": self.mark,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DeadLetter:
        """Parse a stored letter."""
        epoch = datetime.fromtimestamp(0, UTC)
        return cls(
            queue=str(raw.get("queue", "")),
            job_id=str(raw.get("id", "")),
            type=str(raw.get("type", "")),
            data=raw.get("data"),
            options=dict(raw.get("options") or {}),
            failed_reason=str(raw.get("failedReason", "")),
            history=parse_history(json.dumps(raw.get("history") or [])),
            stacktrace=[str(line) for line in raw.get("stacktrace") or []],
            attempts_made=int(raw.get("attemptsMade") or 0),
            created_at=from_ms(raw.get("createdAt")),
            failed_at=from_ms(raw.get("failedAt")) or epoch,
            dead_lettered_at=from_ms(raw.get("deadLetteredAt")) or epoch,
            worker=raw.get("worker"),
            parent=raw.get("parent"),
        )


def _json_list(raw: str | None) -> list[str]:
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        return []
    return [str(item) for item in value] if isinstance(value, list) else []


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which letters: one job type, a text (case-insensitive, in the id, type, payload and failure reason),
    and a window of failure times. No criteria: every letter."""

    job_type: str | None = None
    text: str | None = None
    failed_after: datetime | None = None
    failed_before: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        """True when the letter meets every criterion."""
        if self.job_type is not None and letter.type != self.job_type:
            return False
        if self.failed_after is not None and letter.failed_at < self.failed_after:
            return False
        if self.failed_before is not None and letter.failed_at >= self.failed_before:
            return False
        if not self.text:
            return True
        needle = self.text.lower()
        payload = json.dumps(letter.data, ensure_ascii=False)
        return any(needle in part.lower() for part in (letter.job_id, letter.type, payload, letter.failed_reason))


@dataclass(frozen=True)
class Selection:
    """The letters an operation acts on: these ids, or those matching a filter (`everything` for all)."""

    ids: tuple[str, ...] = ()
    filter: DeadLetterFilter | None = None

    @classmethod
    def of(cls, ids: Sequence[str] | None = None, filter: DeadLetterFilter | None = None) -> Selection:
        """Ids or a filter, not both, not neither."""
        if ids and filter is not None:
            raise DeadLetterSelectionError("Select dead letters by ids or by a filter, not both.")
        if not ids and filter is None:
            raise DeadLetterSelectionError(
                "Say which dead letters: give ids, a filter, or an empty filter for all of them."
            )
        return cls(tuple(dict.fromkeys(ids or ())), filter)


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did (or, with `dry_run`, would do)."""

    matched: int
    replayed: int
    dry_run: bool
    truncated: bool
    job_ids: list[str] = field(default_factory=list)  # the matched letters' ids
    new_job_ids: list[str] = field(default_factory=list)  # the jobs enqueued, in the same order
    failures: dict[str, str] = field(default_factory=dict)  # letter id -> why it was not replayed


@dataclass(frozen=True)
class PurgeReport:
    """What a purge deleted (or, with `dry_run`, would delete)."""

    matched: int
    purged: int
    dry_run: bool
    truncated: bool
    job_ids: list[str] = field(default_factory=list)


def replay_options(options: dict[str, Any], replay_id: str, now_ms: int) -> JobOptions:
    """Job options for a replay: the letter's priority, attempts, backoff, timeout and retention (a deadline
    only while still ahead), under the replay's own id."""
    backoff = options.get("backoff")
    deadline = options.get("deadline")
    return JobOptions(
        priority=int(options.get("priority") or 0) or "normal",
        attempts=int(options["attempts"]) if options.get("attempts") else None,
        backoff=BackoffSettings.model_validate(backoff) if isinstance(backoff, dict) else None,
        timeout_ms=int(options["timeout"]) if options.get("timeout") else None,
        deadline=from_ms(deadline) if deadline and int(deadline) > now_ms else None,
        job_id=replay_id,
        keep_completed=_kept(options.get("removeOnComplete")),
        keep_failed=_kept(options.get("removeOnFail")),
    )


def _kept(remove_option: Any) -> int | None:
    if remove_option is True:
        return 0
    if isinstance(remove_option, int) and not isinstance(remove_option, bool):
        return remove_option
    return None


def replay_id(letter: DeadLetter) -> str:
    """The id of a letter's replay, `<job id>-r<failure time>`: the same if one letter is replayed twice (the
    second add is a no-op), new for each failure of the same job id."""
    return f"{letter.job_id}-r{letter.mark}"[-256:]


class DeadLetters:
    """The dead letters of one queue: record, read, replay and purge them."""

    def __init__(self, queue: Queue, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.queue = queue
        self.client = queue.client
        self.keys = queue.conveyor_keys
        self.index = self.keys.dead_letters(queue.name)
        self.entries = self.keys.dead_letter_entries(queue.name)
        self.max_entries = max_entries
        self._record = self.client.register_script(_RECORD)

    @classmethod
    def of(cls, source: QueueSource, queue: str, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> DeadLetters:
        """The dead letters of an app's queue (`DeadLetters.of(app, "indexing")`)."""
        return cls(source.queue(queue), max_entries=max_entries)

    # --- recording --------------------------------------------------------------------------------------

    async def record(self, letter: DeadLetter, *, alert: bool = False) -> bool:
        """Store a letter; True when it is new (then, with `alert`, a webhook alert is queued with it)."""
        member = alert_member(letter.queue, letter.job_id, letter.mark)
        keys = [self.index, self.entries, self.keys.dead_letter_alerts]
        args: list[str | int] = [
            letter.job_id,
            json.dumps(letter.to_json(), separators=(",", ":"), ensure_ascii=False),
            letter.mark,
            _ms(letter.dead_lettered_at) or 0,
            self.max_entries,
            "1" if alert else "0",
            member,
        ]
        return bool(await self._record(keys=keys, args=args))

    async def record_failed_job(self, job_id: str, *, now_ms: int, alert: bool = False) -> bool | None:
        """Copy a failed job from its hash into a letter; None when the job no longer exists."""
        fields = cast("dict[str, str]", await self.client.hgetall(self.queue.keys.job(job_id)))
        if not fields:
            return None
        return await self.record(DeadLetter.from_hash(self.queue.name, job_id, fields, now_ms), alert=alert)

    async def reconcile(self, since_ms: int, until_ms: int, *, now_ms: int, alert: bool = False) -> list[str]:
        """Record the queue's failed jobs that finished in `[since_ms, until_ms]` and have no letter for that
        failure (their worker died before recording it). Returns the ids recorded."""
        found = cast(
            "list[tuple[str, float]]",
            await self.client.zrangebyscore(self.queue.keys.failed, since_ms, until_ms, withscores=True),
        )
        if not found:
            return []
        ids = [str(job_id) for job_id, _ in found]
        stored = await self.client.hmget(self.entries, ids)
        recorded = []
        for (job_id, score), raw in zip(found, stored, strict=True):
            if raw is not None and json.loads(raw).get("mark") == str(int(score)):
                continue
            if await self.record_failed_job(str(job_id), now_ms=now_ms, alert=alert):
                recorded.append(str(job_id))
        return recorded

    # --- reading ----------------------------------------------------------------------------------------

    async def count(self) -> int:
        """How many letters the queue holds."""
        return int(await self.client.zcard(self.index))

    async def get(self, job_id: str) -> DeadLetter:
        """One letter by job id, or `DeadLetterNotFoundError`."""
        raw = await self.client.hget(self.entries, job_id)
        if raw is None:
            raise DeadLetterNotFoundError(self.queue.name, job_id)
        return DeadLetter.from_json(json.loads(raw))

    async def letters(
        self, filter: DeadLetterFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> list[DeadLetter]:
        """Letters matching `filter`, newest first, skipping the first `offset` matches."""
        wanted = filter or DeadLetterFilter()
        page: list[DeadLetter] = []
        skipped = 0
        async for letter in self._scan():
            if not wanted.matches(letter):
                continue
            if skipped < offset:
                skipped += 1
                continue
            page.append(letter)
            if len(page) >= limit:
                break
        return page

    async def _scan(self) -> AsyncIterator[DeadLetter]:
        """Every letter, newest first, read in chunks."""
        start = 0
        while True:
            ids = cast("list[str]", await self.client.zrevrange(self.index, start, start + _CHUNK - 1))
            if not ids:
                return
            for raw in await self.client.hmget(self.entries, ids):
                if raw is not None:
                    yield DeadLetter.from_json(json.loads(raw))
            start += len(ids)

    async def select(self, selection: Selection, limit: int = MAX_SELECTION) -> tuple[list[DeadLetter], bool]:
        """The letters a selection names (at most `limit`) and whether more matched."""
        if selection.ids:
            raws = await self.client.hmget(self.entries, list(selection.ids))
            letters = [DeadLetter.from_json(json.loads(raw)) for raw in raws if raw is not None]
            return letters[:limit], len(letters) > limit
        wanted = selection.filter or DeadLetterFilter()
        chosen: list[DeadLetter] = []
        async for letter in self._scan():
            if wanted.matches(letter):
                if len(chosen) >= limit:
                    return chosen, True
                chosen.append(letter)
        return chosen, False

    # --- acting -----------------------------------------------------------------------------------------

    async def replay(
        self, selection: Selection, *, dry_run: bool = False, limit: int = MAX_SELECTION, now_ms: int | None = None
    ) -> ReplayReport:
        """Enqueue a fresh job from each selected letter and remove the letter; with `dry_run`, only count.

        A letter whose job cannot be added (e.g. its payload is now over the size limit) stays, and the
        report says why.
        """
        letters, truncated = await self.select(selection, limit)
        ids = [letter.job_id for letter in letters]
        if dry_run:
            return ReplayReport(len(letters), 0, True, truncated, ids)
        new_ids: list[str] = []
        failures: dict[str, str] = {}
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        for letter in letters:
            try:
                options = replay_options(letter.options, replay_id(letter), now)
                new_ids.append(await self.queue.add(letter.type, letter.data, options))
            except (QueueError, ValueError) as exc:
                failures[letter.job_id] = str(exc)
                continue
            await self._drop(letter.job_id)
        return ReplayReport(len(letters), len(new_ids), False, truncated, ids, new_ids, failures)

    async def _drop(self, *ids: str) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.index, *ids)
        pipe.hdel(self.entries, *ids)
        removed, _ = await pipe.execute()
        return int(removed)

    async def purge(self, selection: Selection, *, dry_run: bool = False, limit: int = MAX_SELECTION) -> PurgeReport:
        """Delete the selected letters for good; with `dry_run`, only count them."""
        letters, truncated = await self.select(selection, limit)
        ids = [letter.job_id for letter in letters]
        if dry_run or not ids:
            return PurgeReport(len(ids), 0, dry_run, truncated, ids)
        return PurgeReport(len(ids), await self._drop(*ids), False, truncated, ids)


def alert_member(queue: str, job_id: str, mark: str) -> str:
    """The alert outbox member of one dead letter (queue names and job ids hold no `|`)."""
    return f"{queue}|{job_id}|{mark}"


def parse_alert_member(member: str) -> tuple[str, str, str]:
    """`(queue, job id, mark)` of an alert outbox member."""
    queue, job_id, mark = member.split("|", 2)
    return queue, job_id, mark
