"""Limits on what one GraphQL document may ask: depth, aliases (counted through fragments, once per use),
tokens, and introspection in production. Each refusal carries its own error code."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
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

Fragments = Mapping[str, FragmentDefinitionNode]


def _fragments(context: ValidationContext) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)}


def _operations(context: ValidationContext) -> list[OperationDefinitionNode]:
    return [d for d in context.document.definitions if isinstance(d, OperationDefinitionNode)]


def selection_depth(selection_set: SelectionSetNode | None, fragments: Fragments, path: frozenset[str]) -> int:
    """How deep fields nest below a selection set (introspection fields are not counted)."""
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + selection_depth(selection.selection_set, fragments, path))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, selection_depth(selection.selection_set, fragments, path))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in path:
                deepest = max(deepest, selection_depth(fragment.selection_set, fragments, path | {name}))
    return deepest


def alias_count(selection_set: SelectionSetNode | None, fragments: Fragments, path: frozenset[str]) -> int:
    """Aliases below a selection set, counting a fragment's aliases each time it is spread."""
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += (1 if selection.alias else 0) + alias_count(selection.selection_set, fragments, path)
        elif isinstance(selection, InlineFragmentNode):
            total += alias_count(selection.selection_set, fragments, path)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in path:
                total += alias_count(fragment.selection_set, fragments, path | {name})
    return total


def depth_rule(max_depth: int) -> type[ValidationRule]:
    """A validation rule refusing operations nested deeper than `max_depth` fields."""

    class MaxDepth(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = _fragments(context)
            for operation in _operations(context):
                depth = selection_depth(operation.selection_set, fragments, frozenset())
                if depth > max_depth:
                    context.report_error(
                        GraphQLError(
                            f"The query is {depth} levels deep; at most {max_depth} are allowed.",
                            operation,
                            extensions={"code": ErrorCode.QUERY_TOO_DEEP.value},
                        )
                    )

    return MaxDepth


def alias_rule(max_aliases: int) -> type[ValidationRule]:
    """A validation rule refusing documents with more than `max_aliases` aliases (fragments included)."""

    class MaxAliases(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            fragments = _fragments(context)
            count = sum(alias_count(op.selection_set, fragments, frozenset()) for op in _operations(context))
            if count > max_aliases:
                context.report_error(
                    GraphQLError(
                        f"The document uses {count} aliases; at most {max_aliases} are allowed.",
                        extensions={"code": ErrorCode.TOO_MANY_ALIASES.value},
                    )
                )

    return MaxAliases


class NoIntrospection(NoSchemaIntrospectionCustomRule):
    """graphql-core's introspection ban, with an error code."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": ErrorCode.INTROSPECTION_DISABLED.value}
        super().report_error(error)


def limit_extensions(config: ApiConfig) -> list[Callable[[], SchemaExtension]]:
    """Factories of the schema extensions enforcing the configured limits (one instance per operation)."""
    rules: list[Any] = [depth_rule(config.max_depth), alias_rule(config.max_aliases)]
    if config.production:
        rules.append(NoIntrospection)
    return [lambda: AddValidationRules(rules), lambda: MaxTokensLimiter(config.max_tokens)]
