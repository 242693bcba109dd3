"""AI jobs against a local server speaking OpenAI chat completions and Anthropic Messages: answers, retries
that honour Retry-After, 5xx retried by the queue, 4xx failing at once, timeouts."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, Job, JobState
from conveyor.ai import ResultStore
from conveyor.indexer import CodeIndex
from conveyor.redis.keys import ConveyorKeys
from tests.ai.conftest import MakeApp
from tests.ai.model_server import API_KEY, ModelServer
from tests.indexer.helpers import PYTHON, running, wait_until

PROVIDERS = ["openai", "anthropic"]
FAST_RETRY: dict[str, Any] = {"backoff": {"type": "fixed", "delay": 100}}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.py"
    path.write_text(PYTHON)
    return path


async def _run(app: Conveyor, task: str, data: dict[str, Any], **options: Any) -> Job:
    queue = app.queue("ai-processing")
    async with running(app.worker(["ai-processing"])):
        job_id = await app.add("ai-processing", task, data, **{**FAST_RETRY, **options})
        await wait_until(lambda: _ended(app, job_id), timeout=30)
    return await queue.get_job(job_id)


async def _delayed(app: Conveyor, job_id: str) -> bool:
    return await app.queue("ai-processing").state_of(job_id) is JobState.DELAYED


async def _ended(app: Conveyor, job_id: str) -> bool:
    return await app.queue("ai-processing").state_of(job_id) in (JobState.COMPLETED, JobState.FAILED)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_answer_is_the_job_result_and_is_stored_beside_the_index(
    make_app: MakeApp, model_server: ModelServer, source: Path, index_path: Path, provider: str
) -> None:
    app = await make_app(provider, "ok")
    job = await _run(app, "explain", {"filePath": str(source), "symbol": "InvoiceCalculator"})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.result["text"] == f"Model answer ({provider}, ok)"
    assert (job.result["provider"], job.result["model"], job.result["task"]) == (provider, "ok", "explain")

    stored = ResultStore(CodeIndex(index_path)).latest(source, "explain")
    assert stored is not None
    assert stored.result.text == job.result["text"]
    assert stored.job_id == job.id


async def test_openai_request_carries_system_and_user_messages_with_the_numbered_source(
    make_app: MakeApp, model_server: ModelServer, source: Path
) -> None:
    app = await make_app("openai", "ok")
    await _run(app, "fix", {"path": str(source), "instructions": "be brief"})
    (request,) = model_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer test-key"
    system, user = request.body["messages"]
    assert (system["role"], user["role"]) == ("system", "user")
    assert "    6 class InvoiceCalculator:" in user["content"]
    assert "be brief" in user["content"]
    assert request.body["model"] == "ok"


async def test_anthropic_request_uses_the_messages_shape_and_headers(
    make_app: MakeApp, model_server: ModelServer, source: Path
) -> None:
    app = await make_app("anthropic", "ok")
    await _run(app, "generate-summary", {"path": str(source)})
    (request,) = model_server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == "test-key"
    assert request.headers["anthropic-version"]
    assert request.body["system"]
    assert request.body["max_tokens"] > 0
    assert [m["role"] for m in request.body["messages"]] == ["user"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_with_a_short_retry_after_is_waited_out_within_the_attempt(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "rate-limited-short")
    job = await _run(app, "explain", {"path": str(source)})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 1
    first, second = model_server.requests
    assert second.at - first.at >= 0.95  # Retry-After: 1 was honoured


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_429_with_a_long_retry_after_waits_without_using_an_attempt(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "rate-limited-long")
    queue = app.queue("ai-processing")
    async with running(app.worker(["ai-processing"])):
        added_at = time.time() * 1000
        job_id = await app.add("ai-processing", "refactor", {"path": str(source)}, **FAST_RETRY)
        await wait_until(lambda: _delayed(app, job_id), timeout=30)
        waiting = await queue.get_job(job_id)
        assert (waiting.attempts_made, waiting.history) == (0, [])  # a wait, not a failed attempt
        delayed_until = await app.client.zscore(queue.keys.delayed, job_id)
        assert delayed_until is not None
        assert delayed_until / 4096 - added_at >= 119_000  # the server's Retry-After, not the queue's backoff
        await queue.promote(job_id)
        await wait_until(lambda: _ended(app, job_id), timeout=30)
    job = await queue.get_job(job_id)
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 1
    assert len(model_server.requests) == 2


@pytest.mark.parametrize("model", ["rate-limited-twice", "unavailable-503"])
async def test_rate_limit_waits_do_not_use_up_attempts(
    make_app: MakeApp, model_server: ModelServer, source: Path, model: str
) -> None:
    app = await make_app("openai", model, max_retry_wait_s=0.1)  # 300 ms is too long to wait inside the attempt
    job = await _run(app, "explain", {"path": str(source)}, attempts=1)
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 1
    assert len(model_server.requests) == (3 if model == "rate-limited-twice" else 2)
    gaps = [b.at - a.at for a, b in itertools.pairwise(model_server.requests)]
    assert min(gaps) >= 0.29  # each wait honoured the server's 300 ms


async def test_a_rate_limit_wait_past_the_deadline_fails_the_job_now(
    make_app: MakeApp, model_server: ModelServer, source: Path
) -> None:
    app = await make_app("openai", "rate-limited-long")
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    job = await _run(app, "explain", {"path": str(source)}, attempts=5, deadline=deadline)
    assert job.state is JobState.FAILED
    assert "deadline" in (job.failed_reason or "")
    assert len(model_server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_api_key_echoed_by_the_provider_is_stored_nowhere(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "echo-key")
    job = await _run(app, "explain", {"path": str(source)}, attempts=3)
    assert job.state is JobState.FAILED
    assert "401" in (job.failed_reason or "")
    assert "[REDACTED]" in (job.failed_reason or "")
    queue = app.queue("ai-processing")
    stored = await app.client.hgetall(queue.keys.job(job.id))
    events = await app.client.xrange(queue.keys.events)
    letters = await app.client.hgetall(ConveyorKeys(app.settings.conveyor_prefix).dead_letter_entries("ai-processing"))
    texts = [*stored.values(), *(str(fields) for _, fields in events), *letters.values()]
    assert letters, "the failed job was dead-lettered"
    assert not [text for text in texts if API_KEY in text]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_500_is_retried_by_the_queue_and_then_succeeds(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "flaky-500")
    job = await _run(app, "explain", {"path": str(source)})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 2
    assert "500" in job.history[0].error


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_400_fails_at_once_without_retries(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "bad-request")
    job = await _run(app, "explain", {"path": str(source)}, attempts=5)
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert "400" in (job.failed_reason or "")
    assert "model does not exist" in (job.failed_reason or "")
    assert len(model_server.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_request_that_times_out_is_retried(
    make_app: MakeApp, model_server: ModelServer, source: Path, provider: str
) -> None:
    app = await make_app(provider, "slow-once")
    job = await _run(app, "explain", {"path": str(source)})
    assert job.state is JobState.COMPLETED, job.failed_reason
    assert job.attempts_made == 2
    assert "did not answer within 0.5 s" in job.history[0].error


async def test_a_200_that_is_not_a_completion_fails_without_retries(
    make_app: MakeApp, model_server: ModelServer, source: Path
) -> None:
    app = await make_app("openai", "garbage")
    job = await _run(app, "explain", {"path": str(source)}, attempts=3)
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert "not with a completion" in (job.failed_reason or "")


async def test_http_provider_without_a_model_fails_saying_which_setting_is_missing(
    make_app: MakeApp, source: Path
) -> None:
    app = await make_app("anthropic", "")
    job = await _run(app, "explain", {"path": str(source)}, attempts=3)
    assert job.state is JobState.FAILED
    assert job.attempts_made == 1
    assert "CONVEYOR_AI_MODEL" in (job.failed_reason or "")
