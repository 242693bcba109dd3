"""The worker side of the dead-letter queue: copy jobs that failed for good, sweep for missed ones, send alerts.

`DeadLetterKeeper` is both a worker hook and a duty. As a hook it sees each attempt end; a final failure is
copied into the queue's dead letters by a background task (never on the job's path: the worker has already
stored the failure and moved on). As a duty (`run`) it does two things:

- the reconciliation sweep: the hook runs after BullMQ moved the job to `failed`, so a worker that dies in
  between leaves a failed job without a letter. Every `sweep_interval_s`, one worker per queue (a Redis lock)
  records the failed jobs that finished since the last sweep and have no letter. Jobs finished less than
  `sweep_grace_s` ago are left to their own worker's hook; the first sweep looks back `sweep_lookback_s`.
  A job removed at once on failure (`keep_failed=0`) is gone from Redis when its worker dies, so the sweep
  cannot find it: that one gap remains.
- the webhook alert (`CONVEYOR_DLQ_WEBHOOK_URL`): each new letter puts one alert in an outbox in Redis in the
  same script call; the keeper POSTs it as JSON, retrying with backoff (`conveyor.queue.dlq_alerts`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from redis.exceptions import RedisError

from conveyor.queue.dlq import DeadLetter, DeadLetterNotFoundError, DeadLetters
from conveyor.queue.dlq_alerts import AlertOutbox, ClaimedAlert
from conveyor.queue.job import AttemptRecord, Job, JobState, numbered
from conveyor.queue.queue import Queue
from conveyor.worker.context import JobInfo
from conveyor.worker.hooks import AttemptEnd, AttemptStart, WorkerHook

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

REDIS_ERRORS = (RedisError, OSError)
MAX_REMEMBERED_STARTS = 10_000  # attempts whose start this hook keeps (a lost attempt never reports its end)
RECORD_TRIES = 5
IDLE_CHECK_S = 30.0  # with a webhook: look for alerts left by other processes at least this often


async def rest(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    """Sleep up to `seconds`, waking early when `wake` or `stop` is set (and clearing `wake`)."""
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    wake.clear()


class DeadLetterSettings(BaseSettings):
    """`CONVEYOR_DLQ_*` settings of the dead-letter queue."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_DLQ_", env_file=".env", extra="ignore")

    webhook_url: str | None = Field(default=None, description="POSTed a JSON alert once per dead letter")
    webhook_secret: str | None = Field(default=None, description="Signs alerts: X-Conveyor-Signature sha256=…")
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=120)
    webhook_attempts: int = Field(default=8, ge=1, le=100)
    max_entries: int = Field(default=10_000, ge=1, description="Letters kept per queue; the oldest go first")
    sweep_interval_s: float = Field(default=30.0, ge=0.05)
    sweep_grace_s: float = Field(default=10.0, ge=0)
    sweep_lookback_s: float = Field(default=3600.0, ge=0)


def letter_from_attempt(
    queue: str, info: JobInfo, fields: dict[str, str] | None, error: BaseException | None, now_ms: int
) -> DeadLetter:
    """The letter of a job whose hash is already gone (removed on failure), from what the attempt started with
    and how it failed: the record the worker wrote is rebuilt the same way."""
    job = Job.from_hash(queue, info.id, fields or {"name": info.type}, JobState.FAILED)
    reason = f"{type(error).__name__}: {error}" if error is not None else "failed"
    stack = "".join(traceback.format_exception(error)) if error is not None else ""
    failed_at = datetime.fromtimestamp(now_ms / 1000, UTC)
    record = AttemptRecord(info.attempt, reason, stack, failed_at, info.worker)
    letter = DeadLetter.from_job(job, failed_at_ms=now_ms, now_ms=now_ms)
    previous = json.loads((fields or {}).get("stacktrace") or "[]")
    return replace(
        letter,
        failed_reason=reason,
        history=numbered([*letter.history, record]),
        stacktrace=[*previous, stack],
        attempts_made=info.attempt,
        worker=info.worker,
        parent=(fields or {}).get("parentKey") or None,
    )


def alert_body(letter: DeadLetter | None, alert: ClaimedAlert, namespace: str) -> dict[str, object]:
    """The JSON an alert POSTs (without stack traces: receivers look those up with `conveyor dlq show`)."""
    body: dict[str, object] = {"event": "dead-letter", "namespace": namespace, "queue": alert.queue}
    body["jobId"] = alert.job_id
    if letter is not None:
        body.update(
            type=letter.type,
            failedReason=letter.failed_reason,
            attemptsMade=letter.attempts_made,
            failedAt=letter.failed_at.isoformat(),
            deadLetteredAt=letter.dead_lettered_at.isoformat(),
            data=letter.data,
        )
    return body


class DeadLetterKeeper(WorkerHook):
    """Records final failures of a worker's queues as dead letters, sweeps for missed ones, sends alerts.

    Add it to a worker as a hook and run `run` as one of its duties (see the module docstring).
    """

    def __init__(
        self,
        queues: Sequence[Queue],
        settings: DeadLetterSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not queues:
            raise ValueError("DeadLetterKeeper needs the worker's queues")
        self.settings = settings or DeadLetterSettings()
        self.letters = {q.name: DeadLetters(q, max_entries=self.settings.max_entries) for q in queues}
        self.client = queues[0].client
        self.keys = queues[0].conveyor_keys
        self.outbox = AlertOutbox(self.client, self.keys, max_attempts=self.settings.webhook_attempts)
        self._clock = clock
        self._starts: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._token = uuid.uuid4().hex

    @property
    def alerting(self) -> bool:
        """True when a webhook URL is configured."""
        return bool(self.settings.webhook_url)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # --- the hook ---------------------------------------------------------------------------------------

    def attempt_started(self, start: AttemptStart) -> None:
        """Keep the job's hash as fetched, for a job whose hash is gone by the time it fails for good."""
        self._starts[(start.job.queue, start.job.id)] = start.fields
        while len(self._starts) > MAX_REMEMBERED_STARTS:
            self._starts.popitem(last=False)

    def attempt_ended(self, end: AttemptEnd) -> None:
        """Copy a final failure in the background."""
        fields = self._starts.pop((end.job.queue, end.job.id), None)
        if end.outcome != "failed" or end.job.queue not in self.letters:
            return
        task = asyncio.get_running_loop().create_task(self._record(end, fields))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, end: AttemptEnd, fields: dict[str, str] | None) -> None:
        letters = self.letters[end.job.queue]
        for attempt in range(1, RECORD_TRIES + 1):
            try:
                now = self._now_ms()
                new = await letters.record_failed_job(end.job.id, now_ms=now, alert=self.alerting)
                if new is None:  # removed on failure: rebuild the copy from the attempt
                    letter = letter_from_attempt(end.job.queue, end.job, fields, end.error, now)
                    new = await letters.record(letter, alert=self.alerting)
            except REDIS_ERRORS as exc:
                log.warning(
                    "could not record dead letter %s of %s (%s)", end.job.id, end.job.queue, exc, extra=fields_of(end)
                )
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if new:
                log.info("job %s of %s is a dead letter", end.job.id, end.job.queue, extra=fields_of(end))
                self._wake.set()
            return
        log.error(
            "gave up recording dead letter %s of %s; the sweep will", end.job.id, end.job.queue, extra=fields_of(end)
        )

    async def drain(self) -> None:
        """Wait for the copies still being written (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the duty ---------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep and send alerts until `stop` is set."""
        next_sweep = 0.0
        http = None
        if self.alerting:  # httpx only in workers that send alerts (its import costs start-up time and memory)
            import httpx

            http = httpx.AsyncClient(timeout=self.settings.webhook_timeout_s)
        try:
            while not stop.is_set():
                now = self._clock()
                if now >= next_sweep:
                    await self._guarded(self.sweep_once())
                    next_sweep = now + self.settings.sweep_interval_s
                wait = next_sweep - self._clock()
                if http is not None:
                    await self._guarded(self.deliver_once(http))
                    wait = min(wait, await self._until_next_alert())
                await rest(stop, self._wake, wait)
        finally:
            if self._tasks:  # copies still being written when the worker stops: give them a moment
                await asyncio.wait(list(self._tasks), timeout=2)
            if http is not None:
                await http.aclose()

    async def _guarded(self, step: Awaitable[object]) -> None:
        try:
            await step
        except REDIS_ERRORS as exc:
            log.warning("dead-letter duty: Redis unavailable (%s); retrying", exc)

    async def _until_next_alert(self) -> float:
        try:
            due = await self.outbox.next_due_ms()
        except REDIS_ERRORS:
            return 1.0
        return IDLE_CHECK_S if due is None else min(IDLE_CHECK_S, max(0.0, (due - self._now_ms()) / 1000))

    async def sweep_once(self) -> dict[str, list[str]]:
        """One reconciliation round over the queues this worker holds the sweep lock of; returns what was
        recorded per queue."""
        found: dict[str, list[str]] = {}
        for name, letters in self.letters.items():
            lock = self.keys.dead_letter_sweep_lock(name)
            lease = max(1, int(self.settings.sweep_interval_s * 1000 * 0.9))
            if not await self.client.set(lock, self._token, nx=True, px=lease):
                continue  # another worker swept this queue within the interval
            found[name] = await self._sweep_queue(name, letters)
        return found

    async def _sweep_queue(self, name: str, letters: DeadLetters) -> list[str]:
        now = self._now_ms()
        until = now - int(self.settings.sweep_grace_s * 1000)
        mark_key = self.keys.dead_letter_sweep(name)
        swept = await self.client.get(mark_key)
        # Overlap the previous window by a minute: workers' clocks differ, and a letter seen twice costs nothing.
        since = int(swept) - 60_000 if swept else now - int(self.settings.sweep_lookback_s * 1000)
        recorded = await letters.reconcile(since, until, now_ms=now, alert=self.alerting)
        await self.client.set(mark_key, str(until))
        if recorded:
            log.warning("dead-lettered %d failed job(s) of %s their worker had not: %s", len(recorded), name, recorded)
            self._wake.set()
        return recorded

    async def deliver_once(self, http: httpx.AsyncClient) -> int:
        """Send the alerts that are due; returns how many were delivered."""
        import httpx  # already loaded by whoever made `http`

        url = self.settings.webhook_url
        if not url:
            return 0
        delivered = 0
        for alert in await self.outbox.claim(self._now_ms()):
            letter = await self._letter(alert)
            body = json.dumps(alert_body(letter, alert, self.keys.prefix), ensure_ascii=False).encode()
            try:
                response = await http.post(url, content=body, headers=self._headers(body))
                response.raise_for_status()
            except httpx.HTTPError as exc:
                await self.outbox.failed(alert, self._now_ms(), f"{type(exc).__name__}: {exc}")
                continue
            await self.outbox.done(alert)
            delivered += 1
        return delivered

    async def _letter(self, alert: ClaimedAlert) -> DeadLetter | None:
        letters = self.letters.get(alert.queue)
        if letters is None:  # an alert of a queue this worker does not serve
            letters = DeadLetters(Queue(self.client, alert.queue, prefix=self.keys.prefix))
        try:
            return await letters.get(alert.job_id)
        except DeadLetterNotFoundError:  # purged or replayed meanwhile: send what the outbox knows
            return None

    def _headers(self, body: bytes) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "conveyor-dlq"}
        if self.settings.webhook_secret:
            digest = hmac.new(self.settings.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Conveyor-Signature"] = f"sha256={digest}"
        return headers


def fields_of(end: AttemptEnd) -> dict[str, str]:
    """Log fields naming the job a line is about, so a line logged after its attempt is filed under it."""
    return {"job_id": end.job.id, "queue": end.job.queue, "job_type": end.job.type}
