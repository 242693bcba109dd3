"""Which queues exist: the three standard ones with the design's defaults, and custom ones from CONVEYOR_QUEUES."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor import Conveyor, NewJob, load_settings
from conveyor.queue.errors import InvalidQueueNameError, UnknownQueueError
from conveyor.queue.queue import Queue

STANDARD = ["indexing", "ai-processing", "background"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No Conveyor variables from the outer environment and no `.env` file in the working directory."""
    for name in ("CONVEYOR_QUEUES", *(f"{q}_QUEUE_CONCURRENCY" for q in ("INDEXING", "AI", "BACKGROUND"))):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
async def custom_app(redis_url: str, clean_env: pytest.MonkeyPatch) -> AsyncIterator[Conveyor]:
    """An app whose CONVEYOR_QUEUES adds `emails` and `reports.daily`."""
    queues = {"emails": {"concurrency": 4, "attempts": 5, "backoff": {"type": "fixed", "delay": 300}},
              "reports.daily": {"timeout_ms": 60000, "keep_completed": 7}}  # fmt: skip
    clean_env.setenv("CONVEYOR_QUEUES", json.dumps(queues))
    app = Conveyor(load_settings(redis_url=redis_url))
    await app.connect()
    yield app
    await app.close()


def test_standard_queues_are_configured_in_order(clean_env: pytest.MonkeyPatch) -> None:
    assert Conveyor(load_settings(redis_url="redis://unused")).queue_names == STANDARD


def test_standard_queue_defaults_match_the_design(clean_env: pytest.MonkeyPatch) -> None:
    queues = load_settings().queue_settings()
    indexing, ai, background = queues["indexing"], queues["ai-processing"], queues["background"]
    assert (indexing.attempts, indexing.timeout_ms) == (3, None)
    assert (indexing.keep_completed, indexing.keep_failed) == (100, 500)
    assert indexing.backoff is not None
    assert (indexing.backoff.type, indexing.backoff.delay) == ("exponential", 1000)
    assert (ai.attempts, ai.timeout_ms) == (2, 30_000)
    assert ai.backoff is not None
    assert (ai.backoff.type, ai.backoff.delay) == ("exponential", 2000)
    assert (background.attempts, background.backoff, background.timeout_ms) == (1, None, None)
    assert [queues[name].concurrency for name in STANDARD] == [5, 3, 2]


def test_queue_concurrency_env_vars_override_the_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("INDEXING_QUEUE_CONCURRENCY", "8")
    clean_env.setenv("AI_QUEUE_CONCURRENCY", "1")
    clean_env.setenv("BACKGROUND_QUEUE_CONCURRENCY", "16")
    queues = load_settings().queue_settings()
    assert [queues[name].concurrency for name in STANDARD] == [8, 1, 16]


async def test_a_standard_queue_stores_its_defaults_in_each_job(app: Conveyor) -> None:
    job_id = await app.add("indexing", "index-file", {"filePath": "a.ts"})
    options = (await app.queue("indexing").get_job(job_id)).options
    assert options["attempts"] == 3
    assert options["backoff"] == {"type": "exponential", "delay": 1000, "jitter": 0.0}
    assert (options["removeOnComplete"], options["removeOnFail"]) == (100, 500)
    ai_id = await app.add("ai-processing", "summarize", {})
    ai_options = (await app.queue("ai-processing").get_job(ai_id)).options
    assert (ai_options["attempts"], ai_options["timeout"]) == (2, 30_000)


async def test_an_option_given_at_add_overrides_the_queue_default(app: Conveyor) -> None:
    job_id = await app.add("indexing", "index-file", {"path": "a.ts"}, attempts=1, keep_completed=0)
    options = (await app.queue("indexing").get_job(job_id)).options
    assert (options["attempts"], options["removeOnComplete"]) == (1, True)


async def test_unknown_queue_is_refused_by_queue_listing_the_known_ones(app: Conveyor) -> None:
    with pytest.raises(UnknownQueueError) as caught:
        app.queue("emails")
    message = str(caught.value)
    assert "'emails'" in message
    assert "ai-processing, background, indexing" in message
    assert "CONVEYOR_QUEUES" in message


async def test_unknown_queue_is_refused_by_add_and_add_bulk_and_nothing_is_written(app: Conveyor) -> None:
    with pytest.raises(UnknownQueueError, match="emails"):
        await app.add("emails", "send", {})
    with pytest.raises(UnknownQueueError, match="emails"):
        await app.add_bulk("emails", [NewJob("send")])
    assert await app.client.keys("*") == []


def test_unknown_queue_is_refused_when_registering_a_handler(clean_env: pytest.MonkeyPatch) -> None:
    app = Conveyor(load_settings(redis_url="redis://unused"))
    with pytest.raises(UnknownQueueError):
        app.handler("emails", "send")


async def test_custom_queues_from_conveyor_queues_are_available_after_the_standard_ones(
    custom_app: Conveyor,
) -> None:
    assert custom_app.queue_names == [*STANDARD, "emails", "reports.daily"]
    job_id = await custom_app.add("emails", "send", {"to": "a@example.org"})
    assert (await custom_app.queue("emails").get_job(job_id)).data == {"to": "a@example.org"}


async def test_custom_queues_apply_their_defaults(custom_app: Conveyor) -> None:
    emails = custom_app.queue_settings["emails"]
    assert (emails.concurrency, emails.attempts) == (4, 5)
    options = (await custom_app.queue("emails").get_job(await custom_app.add("emails", "send"))).options
    assert options["attempts"] == 5
    assert options["backoff"] == {"type": "fixed", "delay": 300, "jitter": 0.0}
    report = await custom_app.queue("reports.daily").get_job(await custom_app.add("reports.daily", "build"))
    assert (report.options["timeout"], report.options["removeOnComplete"], report.max_attempts) == (60000, 7, 1)


def test_a_custom_queue_may_override_a_standard_one(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CONVEYOR_QUEUES", '{"background": {"concurrency": 9, "attempts": 4}}')
    queues = load_settings().queue_settings()
    assert list(queues) == STANDARD
    assert (queues["background"].concurrency, queues["background"].attempts) == (9, 4)


@pytest.mark.parametrize("name", ["a:b", "", "-leading-dash", "has space", "x" * 129])
def test_a_queue_name_bullmq_keys_cannot_hold_is_refused(name: str) -> None:
    with pytest.raises(InvalidQueueNameError, match="Invalid queue name"):
        Queue(None, name)  # type: ignore[arg-type]  # refused before the client is used
