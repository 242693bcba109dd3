"""GraphQL input types and their conversion to the queue layer's validated objects."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from conveyor.api.errors import ApiError, ErrorCode
from conveyor.config import BackoffSettings
from conveyor.queue.job import JobState
from conveyor.queue.options import DEFAULT_OPTIONS, JobOptions
from conveyor.queue.search import JobFilter


@strawberry.enum(name="JobPriority", description="Named priorities; CRITICAL runs first.")
class PriorityEnum(Enum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@strawberry.enum(name="BackoffType")
class BackoffTypeEnum(Enum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


@strawberry.enum(name="MetricsRange", description="How far back `queueMetrics` looks.")
class MetricsRange(Enum):
    LAST_5_MINUTES = 5
    LAST_15_MINUTES = 15
    LAST_HOUR = 60
    LAST_6_HOURS = 360
    LAST_24_HOURS = 1440

    @property
    def milliseconds(self) -> int:
        """The range's length."""
        return int(self.value) * 60_000


@strawberry.input(name="BackoffInput", description="Delay between retries: fixed, or doubling from `delay` ms.")
class BackoffInput:
    type: BackoffTypeEnum = BackoffTypeEnum.EXPONENTIAL
    delay: int = 1000
    jitter: float = 0.0


@strawberry.input(name="JobOptionsInput", description="Options of one job; unset ones take the queue's defaults.")
class JobOptionsInput:
    priority: PriorityEnum | None = strawberry.field(default=None, description="A named priority.")
    priority_level: int | None = strawberry.field(
        default=None, description="A numeric priority instead: 1 (highest) to 2097152."
    )
    delay: int | None = strawberry.field(default=None, description="Milliseconds to wait before the job may run.")
    attempts: int | None = None
    backoff: BackoffInput | None = None
    timeout: int | None = strawberry.field(default=None, description="Milliseconds an attempt may run.")
    deadline: datetime | None = strawberry.field(
        default=None, description="After this time the job fails as deadline-exceeded, without retries."
    )
    job_id: str | None = strawberry.field(default=None, description="Custom id: adding an existing id is a no-op.")

    def to_options(self) -> JobOptions:
        """The validated options (pydantic `ValidationError` becomes an INVALID_OPTIONS error)."""
        if self.priority is not None and self.priority_level is not None:
            raise ApiError(ErrorCode.INVALID_OPTIONS, "Give either `priority` or `priorityLevel`, not both.")
        fields: dict[str, object] = {}
        if self.priority is not None:
            fields["priority"] = self.priority.value
        if self.priority_level is not None:
            fields["priority"] = self.priority_level
        if self.backoff is not None:
            backoff = self.backoff
            fields["backoff"] = BackoffSettings(type=backoff.type.value, delay=backoff.delay, jitter=backoff.jitter)
        pairs = (("delay_ms", self.delay), ("attempts", self.attempts), ("timeout_ms", self.timeout))
        fields.update({name: value for name, value in pairs if value is not None})
        fields.update({"deadline": self.deadline, "job_id": self.job_id})
        return JobOptions.model_validate(fields)


def options_of(options: JobOptionsInput | None) -> JobOptions:
    """Validated options (defaults when none were given)."""
    return options.to_options() if options is not None else DEFAULT_OPTIONS


@strawberry.input(name="NewJobInput", description="One job of `addJobs`.")
class NewJobInput:
    type: str
    data: JSON | None = None
    options: JobOptionsInput | None = None


@strawberry.input(name="JobFilterInput", description="Which jobs: states (all when empty), a type, a text.")
class JobFilterInput:
    states: list[JobState] | None = None
    type: str | None = None
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive text in the id, type, data or failure reason."
    )

    def to_filter(self) -> JobFilter:
        """The queue layer's filter."""
        return job_filter(self.states, self.type, self.search)


def job_filter(states: list[JobState] | None, job_type: str | None, search: str | None) -> JobFilter:
    """A queue-layer filter from GraphQL arguments."""
    if search is not None and len(search) > 200:
        raise ApiError(ErrorCode.LIMIT_EXCEEDED, "`search` may be at most 200 characters.")
    return JobFilter(tuple(states or ()), job_type, search or None)
