"""AI processing of source files on the `ai-processing` queue: `explain`, `refactor`, `fix`, `generate-summary`.

Providers: `offline` (the default; honest static analysis, no network), `openai` (OpenAI-compatible chat
completions) and `anthropic` (Messages API), chosen with `CONVEYOR_AI_PROVIDER`. Results are each job's return
value and are stored beside the code index (`ResultStore`). `register(app)` adds the handlers.

The package's names are imported on first use (PEP 562): a worker of an app without the AI handlers does not
load the providers or their HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor.ai.provider import TASKS, AIRequest, AIResult, Provider

if TYPE_CHECKING:
    from conveyor.ai.jobs import QUEUE, AIFileRequest, batch, register
    from conveyor.ai.results import ResultStore, StoredResult
    from conveyor.ai.settings import AISettings

_LAZY = {
    **dict.fromkeys(("QUEUE", "AIFileRequest", "batch", "register"), "conveyor.ai.jobs"),
    "ResultStore": "conveyor.ai.results",
    "StoredResult": "conveyor.ai.results",
    "AISettings": "conveyor.ai.settings",
}

__all__ = [
    "QUEUE",
    "TASKS",
    "AIFileRequest",
    "AIRequest",
    "AIResult",
    "AISettings",
    "Provider",
    "ResultStore",
    "StoredResult",
    "batch",
    "register",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
