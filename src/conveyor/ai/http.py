"""HTTP providers: OpenAI-compatible chat completions and Anthropic Messages, over httpx with time limits.

Failures are sorted for the queue's retry policy: 429 and 5xx, timeouts and connection errors are retryable
(`ProviderUnavailableError`); any other 4xx, or a 200 that is not a completion, is not
(`ProviderRejectedError`, which fails the job at once). When the server says how long to wait
(`Retry-After`, `retry-after-ms`) and that is short (`CONVEYOR_AI_MAX_RETRY_WAIT_S`), the provider waits
inside the attempt and tries again, since the queue's backoff could otherwise retry too early.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from typing import Any

import httpx

from conveyor.ai.errors import ProviderConfigError, ProviderRejectedError, ProviderUnavailableError
from conveyor.ai.prompts import SYSTEM, user_prompt
from conveyor.ai.provider import AIRequest, AIResult
from conveyor.ai.settings import AISettings
from conveyor.app import redact_secrets

log = logging.getLogger(__name__)
ANTHROPIC_VERSION = "2023-06-01"
MAX_ERROR_BODY = 300


def retry_after_ms(headers: httpx.Headers, now: float | None = None) -> int | None:
    """The server's requested wait in ms, from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if (raw_ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0, int(float(raw_ms)))
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0, int(float(raw) * 1000))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0, int((when - (now if now is not None else time.time())) * 1000))


def classify(
    response: httpx.Response, secrets: tuple[str, ...] = ()
) -> ProviderUnavailableError | ProviderRejectedError:
    """The error a non-2xx response stands for; its message never holds `secrets` or anything shaped like a
    credential (a 401 body may echo the key it refused)."""
    body = redact_secrets(response.text[:MAX_ERROR_BODY].strip(), secrets)
    status = response.status_code
    if status == 429 or status >= 500:
        wait = retry_after_ms(response.headers)
        hint = f"; the server asks to retry after {wait} ms" if wait is not None else ""
        return ProviderUnavailableError(
            f"Model endpoint answered {status}{hint}: {body}", status=status, retry_after_ms=wait
        )
    return ProviderRejectedError(
        f"Model endpoint refused the request with {status}: {body}. Check CONVEYOR_AI_MODEL, CONVEYOR_AI_API_KEY "
        "and CONVEYOR_AI_BASE_URL; the job is not retried.",
        status=status,
    )


class ChatProvider:
    """Shared request/retry logic; subclasses say where to post, what to send and how to read the answer."""

    name = "http"
    path = ""

    def __init__(self, settings: AISettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.model:
            raise ProviderConfigError(
                f"CONVEYOR_AI_PROVIDER={settings.provider} needs CONVEYOR_AI_MODEL (the model name to ask for)."
            )
        self.settings = settings
        self.model = settings.model
        self.url = settings.endpoint_base() + self.path
        self._transport = transport

    def headers(self) -> dict[str, str]:
        """Request headers (authentication)."""
        raise NotImplementedError

    def body(self, request: AIRequest) -> dict[str, Any]:
        """The JSON body of the request."""
        raise NotImplementedError

    def answer(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The answer text and usage details from a 200 response's JSON."""
        raise NotImplementedError

    async def run(self, request: AIRequest) -> AIResult:
        """Send the request, waiting out short `Retry-After`s inside the attempt; see the module docstring."""
        body = self.body(request)
        timeout = httpx.Timeout(self.settings.timeout_s, connect=min(10.0, self.settings.timeout_s))
        async with httpx.AsyncClient(timeout=timeout, transport=self._transport) as client:
            attempt = 0
            while True:
                response = await self._post(client, body)
                if response.is_success:
                    text, usage = self._read(response)
                    return AIResult(request.task, request.path, self.name, self.model, text, details=usage)
                error = classify(response, (self._key(),))
                wait_ms = self._inline_wait_ms(error, attempt)
                if wait_ms is None:
                    raise error
                log.info("model endpoint answered %s; retrying in %s ms", response.status_code, wait_ms)
                await asyncio.sleep(wait_ms / 1000)
                attempt += 1

    def _inline_wait_ms(self, error: Exception, attempt: int) -> int | None:
        """How long to wait before retrying inside this attempt, or None to fail the attempt now."""
        if not isinstance(error, ProviderUnavailableError) or error.retry_after_ms is None:
            return None
        if error.retry_after_ms > self.settings.max_retry_wait_s * 1000:
            return None
        return error.retry_after_ms if attempt < self.settings.max_inline_retries else None

    async def _post(self, client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
        try:
            return await client.post(self.url, json=body, headers=self.headers())
        except httpx.TimeoutException as exc:
            raise ProviderUnavailableError(
                f"Model endpoint did not answer within {self.settings.timeout_s} s ({type(exc).__name__}); "
                "raise CONVEYOR_AI_TIMEOUT_S if the model is slow."
            ) from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailableError(f"Cannot reach the model endpoint {self.url}: {exc}") from exc

    def _read(self, response: httpx.Response) -> tuple[str, dict[str, Any]]:
        try:
            return self.answer(response.json())
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            body = redact_secrets(response.text[:MAX_ERROR_BODY], (self._key(),))
            raise ProviderRejectedError(
                f"Model endpoint answered 200 but not with a completion ({type(exc).__name__}: {exc}): "
                f"{body}. Check CONVEYOR_AI_PROVIDER matches the endpoint's protocol."
            ) from exc

    def _key(self) -> str:
        return self.settings.api_key.get_secret_value() if self.settings.api_key else ""


class OpenAIChatProvider(ChatProvider):
    """`POST {base}/chat/completions`, as OpenAI and compatible servers (vLLM, llama.cpp, Ollama …) speak it."""

    name = "openai"
    path = "/chat/completions"

    def headers(self) -> dict[str, str]:
        """Bearer authentication when a key is set."""
        key = self._key()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def body(self, request: AIRequest) -> dict[str, Any]:
        """A system and a user message."""
        return {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "temperature": 0.2,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": user_prompt(request, self.settings.max_input_chars)},
            ],
        }

    def answer(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """`choices[0].message.content`, and `usage`."""
        text = payload["choices"][0]["message"]["content"]
        if not isinstance(text, str):
            raise TypeError("message content is not text")
        return text, {"usage": payload.get("usage") or {}}


class AnthropicMessagesProvider(ChatProvider):
    """`POST {base}/v1/messages`, Anthropic's Messages API."""

    name = "anthropic"
    path = "/v1/messages"

    def headers(self) -> dict[str, str]:
        """The `x-api-key` and API version headers."""
        return {"x-api-key": self._key(), "anthropic-version": ANTHROPIC_VERSION}

    def body(self, request: AIRequest) -> dict[str, Any]:
        """The system prompt and one user message."""
        return {
            "model": self.model,
            "max_tokens": self.settings.max_tokens,
            "system": SYSTEM,
            "messages": [{"role": "user", "content": user_prompt(request, self.settings.max_input_chars)}],
        }

    def answer(self, payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The text blocks of `content`, joined, and `usage`."""
        blocks = [block["text"] for block in payload["content"] if block.get("type") == "text"]
        if not blocks:
            raise KeyError("no text block in content")
        return "\n".join(blocks), {"usage": payload.get("usage") or {}, "stop_reason": payload.get("stop_reason")}
