"""Limits on what one GraphQL document may ask: depth, aliases (counted through fragments, once per use),
tokens, and introspection in production. Each refusal carries its own error code.

Depth and aliases are measured in one pass over the document that visits each fragment once (its cost is
remembered), so a fragment-doubling "query bomb" is measured and refused in linear time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension

from conveyor.api.config import ApiConfig
from conveyor.api.errors import ErrorCode


@dataclass(frozen=True)
class Cost:
    """What a selection set asks for: how deep its fields nest (introspection fields not counted) and how many
    aliases it uses (a fragment's aliases once per spread)."""

    depth: int = 0
    aliases: int = 0


class DocumentCost:
    """The costs of a document's selection sets, each fragment measured once and remembered.

    A fragment spread twice by each of 22 nested fragments is used 2**22 times: walking it once per use takes
    seconds of event-loop time, remembering its cost takes one visit. A fragment cycle (refused anyway by the
    standard `NoFragmentCycles` rule) is cut where it closes.
    """

    def __init__(self, document: DocumentNode) -> None:
        self.document = document
        self.fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        self._known: dict[str, Cost] = {}
        self._open: set[str] = set()

    def operations(self) -> list[tuple[OperationDefinitionNode, Cost]]:
        """Each operation of the document with its cost."""
        operations = [d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)]
        return [(operation, self.of(operation.selection_set)) for operation in operations]

    def of(self, selection_set: SelectionSetNode | None) -> Cost:
        """The cost of a selection set."""
        if selection_set is None:
            return Cost()
        depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                inner = self.of(selection.selection_set)
                aliases += inner.aliases + (1 if selection.alias else 0)
                if not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.of(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value)
            depth, aliases = max(depth, inner.depth), aliases + inner.aliases
        return Cost(depth, aliases)

    def fragment(self, name: str) -> Cost:
        """The cost of one use of a fragment (nothing for an unknown fragment, or one that spreads itself)."""
        known = self._known.get(name)
        if known is not None:
            return known
        fragment = self.fragments.get(name)
        if fragment is None or name in self._open:
            return Cost()
        self._open.add(name)
        cost = self._known[name] = self.of(fragment.selection_set)
        self._open.discard(name)
        return cost


def cost_rule(max_depth: int, max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing operations nested deeper than `max_depth` fields (QUERY_TOO_DEEP) and documents
    with more than `max_aliases` aliases, fragments included (TOO_MANY_ALIASES)."""

    class MaxCost(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            operations = DocumentCost(context.document).operations()
            for operation, cost in operations:
                if cost.depth > max_depth:
                    context.report_error(
                        GraphQLError(
                            f"The query is {cost.depth} levels deep; at most {max_depth} are allowed.",
                            operation,
                            extensions={"code": ErrorCode.QUERY_TOO_DEEP.value},
                        )
                    )
            count = sum(cost.aliases for _, cost in operations)
            if count > max_aliases:
                context.report_error(
                    GraphQLError(
                        f"The document uses {count} aliases; at most {max_aliases} are allowed.",
                        extensions={"code": ErrorCode.TOO_MANY_ALIASES.value},
                    )
                )

    return MaxCost


class NoIntrospection(NoSchemaIntrospectionCustomRule):
    """graphql-core's introspection ban, with an error code."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": ErrorCode.INTROSPECTION_DISABLED.value}
        super().report_error(error)


def limit_extensions(config: ApiConfig) -> list[Callable[[], SchemaExtension]]:
    """Factories of the schema extensions enforcing the configured limits (one instance per operation)."""
    rules: list[Any] = [cost_rule(config.max_depth, config.max_aliases)]
    if config.production:
        rules.append(NoIntrospection)
    return [lambda: AddValidationRules(rules), lambda: MaxTokensLimiter(config.max_tokens)]
