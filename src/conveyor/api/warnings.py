"""Warnings of a successful operation, in the response's `extensions.warnings` (a list of messages).

A resolver that did what it was asked but has something to say (a job added for a type no live worker
handles) calls `warn(ctx, message)`; the data stays as the schema describes it.
"""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from conveyor.api.context import ApiContext


def warn(ctx: ApiContext, message: str) -> None:
    """Add a warning to the current operation's response (once per distinct message)."""
    if message not in ctx.warnings:
        ctx.warnings.append(message)


class Warnings(SchemaExtension):
    """Puts the operation's warnings in `extensions.warnings` of its response."""

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        warnings = getattr(context, "warnings", None)
        return {"warnings": list(warnings)} if warnings else {}
