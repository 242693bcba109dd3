"""Settings of the GraphQL API server, from `CONVEYOR_API_*` environment variables or keywords."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.config import Settings
from conveyor.config.errors import ConfigError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """True for a loopback address or `localhost`."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiConfig(BaseSettings):
    """How the API server listens and what it allows. Field names map to `CONVEYOR_API_<NAME>` variables.

    Production mode (the default) turns off introspection and the GraphiQL IDE. `anonymous_loopback` lets
    requests from the loopback interface in without a token, as admin: only for the embedded development
    setup, and only while the server binds to a loopback address. Every other request needs a token.

    `token_recheck_s`: how often an open websocket connection checks that its token was not revoked (nor its
    tenant removed); a revoked token's connection is closed (4403), ending its subscriptions.

    `/metrics` names every queue and worker, so it needs a token without queue scope and tenant (any role;
    Prometheus sends it with `authorization: {credentials: …}` in its scrape config) unless `metrics_public`
    (`CONVEYOR_API_METRICS_PUBLIC=true`) opens it, for a Prometheus on a trusted network.
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_API_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    production: bool = True
    anonymous_loopback: bool = False
    cors_origins: tuple[str, ...] = ()
    max_depth: int = Field(default=10, ge=2, le=100)
    max_aliases: int = Field(default=30, ge=0, le=1000)
    max_tokens: int = Field(default=2000, ge=50, le=100_000)
    max_page_size: int = Field(default=100, ge=1, le=10_000)
    max_batch_size: int = Field(default=500, ge=1, le=100_000)
    max_request_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_subscriptions_per_connection: int = Field(default=10, ge=1, le=1000)
    token_recheck_s: float = Field(default=1.0, ge=0.05, le=60)
    metrics_public: bool = False
    stats_interval_s: float = Field(default=0.25, ge=0.05, le=60)
    ready_requires_workers: bool = True
    shutdown_grace_s: int = Field(default=5, ge=0, le=600)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return tuple(part.strip() for part in text.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _anonymous_only_on_loopback(self) -> ApiConfig:
        if self.anonymous_loopback and not is_loopback(self.host):
            raise ValueError(
                f"anonymous_loopback needs a loopback host, not {self.host!r}: bind to 127.0.0.1, or create "
                "API tokens (`conveyor token create`) and turn anonymous access off"
            )
        return self

    @property
    def ide(self) -> bool:
        """True when GraphiQL and introspection are on (development mode)."""
        return not self.production


def load_api_config(settings: Settings | None = None, **overrides: Any) -> ApiConfig:
    """Read the API settings from the environment, with keyword overrides.

    With `settings` that use the embedded Redis (no REDIS_URL/HOST/SENTINELS), the defaults become the
    development ones: not production (GraphiQL on) and anonymous loopback access on, unless the
    environment or `overrides` say otherwise.

    Raises:
        ConfigError: a value is invalid; the message names the variable.
    """
    try:
        config = ApiConfig(**overrides)
        if settings is not None and not settings.redis_configured:
            dev = {
                name: value
                for name, value in (("production", False), ("anonymous_loopback", is_loopback(config.host)))
                if name not in config.model_fields_set
            }
            config = ApiConfig(**{**dev, **overrides})
    except ValidationError as exc:
        problems = "; ".join(
            f"CONVEYOR_API_{'.'.join(str(p) for p in err['loc']).upper() or 'CONFIG'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"Invalid API configuration: {problems}") from exc
    return config
