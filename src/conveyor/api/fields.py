"""Typed decorators for resolvers with a description (Strawberry's own are untyped once given arguments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import strawberry

F = TypeVar("F", bound=Callable[..., Any])


def field(description: str) -> Callable[[F], F]:
    """`@strawberry.field(description=…)`, typed."""
    return cast("Callable[[F], F]", strawberry.field(description=description))


def mutation(description: str) -> Callable[[F], F]:
    """`@strawberry.mutation(description=…)`, typed."""
    return cast("Callable[[F], F]", strawberry.mutation(description=description))


def subscription(description: str) -> Callable[[F], F]:
    """`@strawberry.subscription(description=…)`, typed."""
    return cast("Callable[[F], F]", strawberry.subscription(description=description))
