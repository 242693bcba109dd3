"""What observability reads from the environment: metric labels, log format and level, tracing on/off."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from conveyor.config.errors import ConfigError

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RESERVED_LABELS = frozenset({"queue", "job_type", "state", "worker", "le"})


def parse_labels(value: str) -> dict[str, str]:
    """`env=prod,instance=a` as a dict; raises ValueError naming the bad entry."""
    labels: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in value.split(","))):
        name, sep, label_value = entry.partition("=")
        name = name.strip()
        if not sep or not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(f"{entry!r} is not name=value with a Prometheus label name")
        if name in RESERVED_LABELS:
            raise ValueError(f"{name!r} is a label Conveyor sets itself; pick another name")
        labels[name] = label_value.strip()
    return labels


class ObservabilitySettings(BaseSettings):
    """Observability settings. Field names map to upper-case env vars (`CONVEYOR_LOG_FORMAT`, …)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # NoDecode: the env value is `k=v,k=v`, not JSON.
    conveyor_metrics_labels: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="Labels on every Conveyor metric, as `env=prod,instance=a`"
    )
    conveyor_log_format: Literal["json", "console"] = "console"
    conveyor_log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error|critical)$")
    conveyor_tracing: bool = Field(
        default=True, description="OpenTelemetry spans for enqueue and processing (needs the `otel` extra)"
    )
    conveyor_metrics_flush_ms: int = Field(
        default=200, ge=10, le=60_000, description="Longest a worker holds job counts before writing them to Redis"
    )

    @field_validator("conveyor_metrics_labels", mode="before")
    @classmethod
    def _parse_labels(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_labels(value)
        if isinstance(value, dict):
            return parse_labels(",".join(f"{k}={v}" for k, v in value.items()))
        return value


def load_observability_settings(**overrides: Any) -> ObservabilitySettings:
    """Read and validate the settings; a bad value raises `ConfigError` naming the variable."""
    try:
        return ObservabilitySettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"Invalid observability configuration: {problems}") from exc
