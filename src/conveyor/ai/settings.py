"""Settings of AI processing, read from the environment (and `.env`) beside Conveyor's own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["offline", "openai", "anthropic"]
DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


class AISettings(BaseSettings):
    """How `ai-processing` jobs reach a model.

    - `CONVEYOR_AI_PROVIDER`: `offline` (default; static analysis, no network), `openai` (any OpenAI-compatible
      chat-completions endpoint) or `anthropic` (Messages API).
    - `CONVEYOR_AI_BASE_URL`: the endpoint's base URL (`…/v1` for OpenAI-compatible servers); defaults to the
      vendor's public API.
    - `CONVEYOR_AI_MODEL`: the model name (required for the HTTP providers).
    - `CONVEYOR_AI_API_KEY`: the key, sent as a bearer token (OpenAI) or `x-api-key` (Anthropic).
    - `CONVEYOR_AI_TIMEOUT_S`: time limit of one HTTP request (keep it below the queue's job timeout, 30 s).
    - `CONVEYOR_AI_MAX_TOKENS`: the answer's length limit.
    - `CONVEYOR_AI_MAX_RETRY_WAIT_S`: a 429/5xx whose `Retry-After` is at most this long is waited out inside
      the attempt and retried; a longer one fails the attempt and the queue's backoff retries the job.
    - `CONVEYOR_AI_MAX_INLINE_RETRIES`: how many such waits one attempt makes before it fails.
    - `CONVEYOR_AI_MAX_INPUT_CHARS`: source longer than this is cut before it is sent.
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_AI_", env_file=".env", extra="ignore")

    provider: ProviderName = "offline"
    base_url: str | None = None
    model: str | None = None
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=25.0, gt=0, le=600)
    max_tokens: int = Field(default=1024, ge=1, le=200_000)
    max_retry_wait_s: float = Field(default=10.0, ge=0, le=300)
    max_inline_retries: int = Field(default=2, ge=0, le=10)
    max_input_chars: int = Field(default=60_000, ge=1000)

    def endpoint_base(self) -> str:
        """The base URL to call, without a trailing slash."""
        return (self.base_url or DEFAULT_BASE_URLS.get(self.provider, "")).rstrip("/")
