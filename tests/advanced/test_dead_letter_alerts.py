"""The dead-letter webhook: called once per dead letter, retried, signed, never in the job's way."""

from __future__ import annotations

import hashlib
import hmac
import json

from conveyor import Conveyor, JobState
from conveyor.queue.dlq import DeadLetters
from conveyor.queue.dlq_alerts import AlertOutbox
from conveyor.redis.keys import ConveyorKeys
from conveyor.worker.dead_letters import DeadLetterSettings
from tests.advanced.conftest import WebhookReceiver, advanced, running, state_is, wait_until


def settings(url: str, **more: object) -> DeadLetterSettings:
    return DeadLetterSettings(webhook_url=url, sweep_interval_s=0.1, sweep_grace_s=0.0, **more)  # type: ignore[arg-type]


async def test_webhook_is_called_once_per_dead_letter_with_its_details(app: Conveyor, webhook: WebhookReceiver) -> None:
    worker, keeper, _ = advanced(app.worker(["background"]), settings(webhook.url, webhook_secret="s3cret"))
    async with running(worker):
        job_id = await app.add("background", "fail", {"reason": "quota"}, attempts=2)
        await wait_until(lambda: webhook.bodies)
        # the sweep sees the same failed job several times meanwhile: still one alert
        await wait_until(lambda: keeper is not None and keeper.sweep_once())
    (body,) = webhook.bodies
    assert body["event"] == "dead-letter"
    assert (body["queue"], body["jobId"], body["type"]) == ("background", job_id, "fail")
    assert body["failedReason"] == "RuntimeError: quota"
    assert body["attemptsMade"] == 2
    raw = json.dumps(body, ensure_ascii=False).encode()
    expected = hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert webhook.headers[0]["x-conveyor-signature"] == f"sha256={expected}"


async def test_failed_webhook_calls_are_retried_until_one_succeeds(app: Conveyor, webhook: WebhookReceiver) -> None:
    webhook.statuses = [503, 500]
    worker, _, _ = advanced(app.worker(["background"]), settings(webhook.url))
    async with running(worker):
        job_id = await app.add("background", "fatal", {})
        await wait_until(lambda: webhook.bodies, timeout=15)
    assert webhook.attempts == 3
    assert [body["jobId"] for body in webhook.bodies] == [job_id]
    assert await AlertOutbox(app.client, ConveyorKeys("bull")).pending() == 0


async def test_alert_is_dropped_after_its_attempts_run_out(app: Conveyor, webhook: WebhookReceiver) -> None:
    webhook.statuses = [503] * 10
    worker, _, _ = advanced(app.worker(["background"]), settings(webhook.url, webhook_attempts=2))
    async with running(worker):
        await app.add("background", "fatal", {})
        await wait_until(lambda: webhook.attempts >= 2, timeout=15)
        outbox = AlertOutbox(app.client, ConveyorKeys("bull"))
        await wait_until(lambda: _empty(outbox))
    assert webhook.bodies == []
    assert await DeadLetters.of(app, "background").count() == 1  # the letter stays


async def _empty(outbox: AlertOutbox) -> bool:
    return await outbox.pending() == 0


async def test_an_unreachable_webhook_does_not_slow_jobs_down(app: Conveyor) -> None:
    worker, _, _ = advanced(app.worker(["background"]), settings("http://127.0.0.1:9/never", webhook_timeout_s=5))
    queue = app.queue("background")
    async with running(worker):
        await app.add("background", "fatal", {})
        ok = await app.add("background", "ok", {})
        await wait_until(lambda: state_is(queue, ok, JobState.COMPLETED), timeout=2)
