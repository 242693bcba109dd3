"""Job options: what a producer may ask of one job, validated, and their BullMQ encoding."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conveyor.config import BackoffSettings, QueueSettings
from conveyor.queue.errors import InvalidOptionsError

RATE_KEY_OPTION = "crk"  # the job's rate-limit group (e.g. a tenant or an AI provider), in the stored options
PRIORITY_NAMES: dict[str, int] = {"critical": 1, "high": 2, "normal": 3, "low": 4}
MAX_PRIORITY = 2_097_152  # BullMQ's limit (2^21)
PriorityName = Literal["critical", "high", "normal", "low"]


class JobOptions(BaseModel):
    """Options of one job; unset fields take the queue's defaults.

    Priority: a name (`critical` runs first, then `high`, `normal`, `low`) or an int where lower runs first
    (1 = critical … 4 = low, up to 2^21). Delay and timeout are in milliseconds; deadline is an absolute time
    after which the job fails as deadline-exceeded without further retries. `job_id` makes adds idempotent:
    adding an id that exists returns the existing job. `keep_completed` / `keep_failed` cap how many finished
    jobs the queue retains (0 removes the job as soon as it finishes). `rate_key` names the rate-limit group
    the job counts against (limits per group come from CONVEYOR_RATE_LIMITS).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    priority: PriorityName | int = "normal"
    delay_ms: int = Field(default=0, ge=0)
    attempts: int | None = Field(default=None, ge=1, le=1000)
    backoff: BackoffSettings | None = None
    timeout_ms: int | None = Field(default=None, gt=0)
    deadline: datetime | None = None
    job_id: str | None = Field(default=None, min_length=1, max_length=256, pattern=r"^[^:\s]+$")
    keep_completed: int | None = Field(default=None, ge=0)
    keep_failed: int | None = Field(default=None, ge=0)
    rate_key: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^:\s]+$")

    @field_validator("priority", mode="before")
    @classmethod
    def _no_bool_priority(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("priority must be a name or an integer, not a boolean")
        return value

    @field_validator("priority")
    @classmethod
    def _check_priority(cls, value: str | int) -> str | int:
        if isinstance(value, int) and not 1 <= value <= MAX_PRIORITY:
            raise ValueError(f"priority must be between 1 (highest) and {MAX_PRIORITY}")
        return value

    @field_validator("job_id")
    @classmethod
    def _check_job_id(cls, value: str | None) -> str | None:
        if value is not None and value.isdigit():
            raise ValueError("a custom job_id must not be all digits (BullMQ reserves those for generated ids)")
        return value

    @field_validator("deadline")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @property
    def priority_value(self) -> int:
        """The BullMQ priority number (1 = highest)."""
        return PRIORITY_NAMES[self.priority] if isinstance(self.priority, str) else self.priority


DEFAULT_OPTIONS = JobOptions()  # every unset: shared, as JobOptions is frozen


def job_options(**fields: Any) -> JobOptions:
    """`JobOptions` from keywords, raising `InvalidOptionsError` (naming each bad option) instead of pydantic's
    ValidationError. Without keywords, the shared `DEFAULT_OPTIONS` (what most adds use: no model is built)."""
    if not fields:
        return DEFAULT_OPTIONS
    try:
        return JobOptions(**fields)
    except ValidationError as exc:
        names = [".".join(str(p) for p in err["loc"]) for err in exc.errors()]
        details = "; ".join(f"{name}: {err['msg']}" for name, err in zip(names, exc.errors(), strict=True))
        raise InvalidOptionsError(f"Invalid job options: {details}", names) from exc


def _keep(count: int | None) -> int | bool:
    # BullMQ: removeOnComplete false keeps all, true removes at once, a number keeps that many.
    if count is None:
        return False
    return True if count == 0 else count


def bullmq_options(options: JobOptions, defaults: QueueSettings, timestamp_ms: int) -> dict[str, Any]:
    """The options dict stored in the job hash, in BullMQ's field names (plus `timeout` and `deadline`)."""
    backoff = options.backoff or defaults.backoff
    opts: dict[str, Any] = {
        "attempts": options.attempts or defaults.attempts,
        "delay": options.delay_ms,
        "priority": options.priority_value,
        "timestamp": timestamp_ms,
        "removeOnComplete": _keep(
            options.keep_completed if options.keep_completed is not None else defaults.keep_completed
        ),
        "removeOnFail": _keep(options.keep_failed if options.keep_failed is not None else defaults.keep_failed),
    }
    if backoff is not None:
        opts["backoff"] = backoff.model_dump(exclude_defaults=False)
    timeout = options.timeout_ms or defaults.timeout_ms
    if timeout:
        opts["timeout"] = timeout
    if options.deadline is not None:
        opts["deadline"] = int(options.deadline.timestamp() * 1000)
    if options.job_id:
        opts["jobId"] = options.job_id
    if options.rate_key:
        opts[RATE_KEY_OPTION] = options.rate_key
    return opts


def keep_jobs(remove_option: Any) -> dict[str, int]:
    """BullMQ's `keepJobs` argument of `moveToFinished` from a stored removeOnComplete/removeOnFail value."""
    if remove_option is True:
        return {"count": 0}
    if isinstance(remove_option, int) and not isinstance(remove_option, bool):
        return {"count": remove_option}
    if isinstance(remove_option, dict):
        return {key: int(value) for key, value in remove_option.items() if key in ("count", "age", "limit")}
    return {"count": -1}
