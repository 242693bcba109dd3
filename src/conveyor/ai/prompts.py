"""What the HTTP providers ask the model, per task."""

from __future__ import annotations

from conveyor.ai.provider import AIRequest

SYSTEM = (
    "You are a senior software engineer reviewing source code. Answer in concise Markdown. Refer to code by "
    "line number when it helps. Do not invent code that is not shown."
)
TASK_PROMPTS = {
    "explain": "Explain what this code does, how it works, and anything surprising about it.",
    "refactor": (
        "Suggest refactorings that make this code simpler and easier to maintain: long functions, deep nesting, "
        "duplicated blocks, unclear names. Show each suggestion as a short before/after."
    ),
    "fix": "Find bugs and likely errors in this code. For each, give the line, the problem and a corrected version.",
    "generate-summary": (
        "Summarize this file in a few sentences: its purpose, its main definitions and its dependencies."
    ),
}


def user_prompt(request: AIRequest, max_chars: int) -> str:
    """The user message: the task, an optional focus symbol and instructions, then the numbered source."""
    source = request.source
    cut = ""
    if len(source) > max_chars:
        source, cut = source[:max_chars], f"\n… (cut: the file continues beyond {max_chars} characters)"
    numbered = "\n".join(f"{n:>5} {line}" for n, line in enumerate(source.splitlines(), start=1))
    parts = [TASK_PROMPTS[request.task]]
    if request.symbol:
        parts.append(f"Focus on `{request.symbol}`.")
    if request.instructions:
        parts.append(f"Also: {request.instructions}")
    language = request.language or "text"
    parts.append(f"File `{request.path}` ({language}), with line numbers:\n```{language}\n{numbered}{cut}\n```")
    return "\n\n".join(parts)
