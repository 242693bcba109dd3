"""Conveyor settings, read from the environment (and an optional `.env` file) and validated."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from conveyor.config.errors import ConfigError

STANDARD_QUEUES = ("indexing", "ai-processing", "background")


QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")  # what BullMQ's key layout can hold
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")


class BackoffSettings(BaseModel):
    """Default retry backoff of a queue: `fixed` or `exponential`, base delay in ms, optional jitter 0..1."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(default="exponential", pattern="^(fixed|exponential)$")
    delay: int = Field(default=1000, ge=0)
    jitter: float = Field(default=0.0, ge=0.0, le=1.0)


class RateLimit(BaseModel):
    """At most `max` jobs started per `duration_ms` window."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: int = Field(ge=1, le=1_000_000)
    duration_ms: int = Field(ge=1, le=86_400_000)


class QueueSettings(BaseModel):
    """Per-queue defaults: worker concurrency, the job options every job of the queue starts from, and limits.

    `rate_limit` and `global_concurrency` hold for the queue as a whole, across every worker; `worker_rate_limit`
    for each worker process. `reserved_slots` of each worker's slots are kept for jobs of priority
    `reserved_priority` or higher (1 = critical), so those start at once even while the queue is saturated.
    `prefetch` caps the jobs a worker process takes ahead of a free slot while the queue has a backlog of short
    jobs (default: a quarter of `concurrency`; 0 turns prefetching off).
    """

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=1, ge=1, le=10_000)
    attempts: int = Field(default=1, ge=1, le=1000)
    backoff: BackoffSettings | None = None
    timeout_ms: int | None = Field(default=None, gt=0)
    keep_completed: int | None = Field(default=None, ge=0)
    keep_failed: int | None = Field(default=None, ge=0)
    rate_limit: RateLimit | None = None
    worker_rate_limit: RateLimit | None = None
    global_concurrency: int | None = Field(default=None, ge=1, le=1_000_000)
    reserved_slots: int = Field(default=0, ge=0)
    reserved_priority: int = Field(default=1, ge=1)
    prefetch: int | None = Field(default=None, ge=0, le=10_000)


class Settings(BaseSettings):
    """Everything Conveyor reads from its environment. Field names map to upper-case env vars."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    redis_url: str | None = Field(default=None, description="redis://, rediss:// or unix:// URL")
    redis_host: str | None = None
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_password: str | None = None
    redis_db: int = Field(default=0, ge=0)
    redis_sentinels: str | None = Field(default=None, description="host:port,host:port of Sentinels")
    redis_sentinel_master: str = "mymaster"
    conveyor_redis_wait_replicas: int = Field(
        default=0, ge=0, le=64, description="replicas that must acknowledge an enqueue or a job's outcome (WAIT)"
    )
    conveyor_redis_wait_timeout_ms: int = Field(
        default=1000, ge=1, le=600_000, description="how long an enqueue waits for those replicas"
    )

    conveyor_data_dir: Path = Path(".conveyor")
    conveyor_state_dir: Path | None = Field(
        default=None, description="the per-user registry of running embedded servers; ~/.local/state/conveyor"
    )
    conveyor_prefix: str = Field(default="bull", min_length=1, pattern=r"^[^:\s]+$")
    conveyor_queues: Annotated[dict[str, QueueSettings], NoDecode] = Field(default_factory=dict)
    conveyor_max_payload_bytes: int = Field(default=1024 * 1024, gt=0)
    conveyor_lock_duration_ms: int = Field(default=6000, ge=1000)
    conveyor_stalled_interval_ms: int = Field(default=4000, ge=500)
    conveyor_shutdown_grace_s: float = Field(default=30.0, ge=0)
    conveyor_heartbeat_s: float = Field(default=2.0, gt=0)
    conveyor_eviction_check_s: float = Field(
        default=60.0, gt=0, description="how often a running worker re-reads Redis' maxmemory-policy"
    )
    conveyor_unknown_type_grace_s: float = Field(
        default=30.0, ge=0, description="how long a job whose type no live worker handles waits before it fails"
    )
    conveyor_rate_limits: Annotated[dict[str, RateLimit], NoDecode] = Field(default_factory=dict)

    indexing_queue_concurrency: int = Field(default=5, ge=1, le=10_000)
    ai_queue_concurrency: int = Field(default=3, ge=1, le=10_000)
    background_queue_concurrency: int = Field(default=2, ge=1, le=10_000)

    @field_validator("conveyor_queues", mode="before")
    @classmethod
    def _parse_queues(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'not valid JSON ({exc}); example: {{"emails": {{"concurrency": 4}}}}') from exc
        if isinstance(value, dict):
            for name in value:
                if not QUEUE_NAME.match(str(name)):
                    raise ValueError(f"invalid queue name {name!r}: use letters, digits, '.', '_' or '-' (no ':')")
        return value

    @field_validator("conveyor_rate_limits", mode="before")
    @classmethod
    def _parse_rate_limits(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f'not valid JSON ({exc}); example: {{"openai": {{"max": 5, "duration_ms": 1000}}}}'
                ) from exc
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(REDIS_URL_SCHEMES):
            raise ValueError(
                f"must start with redis://, rediss:// or unix:// (e.g. redis://localhost:6379/0), got {value!r}"
            )
        return value

    @property
    def redis_configured(self) -> bool:
        """True when the user pointed Conveyor at a Redis; False means the embedded server is used."""
        return bool(self.redis_url or self.redis_host or self.redis_sentinels)

    def queue_settings(self) -> dict[str, QueueSettings]:
        """The standard queues with the design's defaults, then the configured ones (which may override)."""
        queues = {
            "indexing": QueueSettings(
                concurrency=self.indexing_queue_concurrency,
                attempts=3,
                backoff=BackoffSettings(type="exponential", delay=1000),
                keep_completed=100,
                keep_failed=500,
            ),
            "ai-processing": QueueSettings(
                concurrency=self.ai_queue_concurrency,
                attempts=2,
                backoff=BackoffSettings(type="exponential", delay=2000),
                timeout_ms=30_000,
            ),
            "background": QueueSettings(concurrency=self.background_queue_concurrency, attempts=1),
        }
        queues.update(self.conveyor_queues)
        return queues


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; a bad value raises `ConfigError` naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{_variable(err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"Invalid configuration: {problems}") from exc


def _variable(loc: tuple[int | str, ...]) -> str:
    """`CONVEYOR_QUEUES.emails.concurrency`: the env var in capitals, the path inside it as written."""
    head, *rest = [str(part) for part in loc] or ["(settings)"]
    return ".".join([head.upper(), *rest])
