"""The provider interface: a request about one source file in, a result out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

TASKS = ("explain", "refactor", "fix", "generate-summary")


@dataclass(frozen=True, slots=True)
class AIRequest:
    """One task on one file. `symbol` narrows `explain`/`refactor` to a definition; `instructions` are the
    user's extra words to the model (ignored offline)."""

    task: str
    path: str
    language: str | None
    source: str
    symbol: str | None = None
    instructions: str | None = None


@dataclass(frozen=True, slots=True)
class AIResult:
    """What a provider produced: Markdown `text` for people, `findings` (each with at least `line` and
    `message`) and `details` for programs, and who produced it."""

    task: str
    path: str
    provider: str
    model: str
    text: str
    findings: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as a job return value (JSON)."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> AIResult:
        """Read a stored result."""
        return cls(**{key: raw[key] for key in cls.__dataclass_fields__ if key in raw})


class Provider(Protocol):
    """Something that can carry out an `AIRequest`."""

    name: str

    async def run(self, request: AIRequest) -> AIResult:
        """Carry out the request, or raise `ProviderUnavailableError` (retry) / `ProviderRejectedError`."""
        ...
