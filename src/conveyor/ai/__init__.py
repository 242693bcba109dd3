"""AI processing of source files on the `ai-processing` queue: `explain`, `refactor`, `fix`, `generate-summary`.

Providers: `offline` (the default; honest static analysis, no network), `openai` (OpenAI-compatible chat
completions) and `anthropic` (Messages API), chosen with `CONVEYOR_AI_PROVIDER`. Results are each job's return
value and are stored beside the code index (`ResultStore`). `register(app)` adds the handlers.
"""

from __future__ import annotations

from conveyor.ai.jobs import QUEUE, AIFileRequest, batch, register
from conveyor.ai.provider import TASKS, AIRequest, AIResult, Provider
from conveyor.ai.results import ResultStore, StoredResult
from conveyor.ai.settings import AISettings

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
