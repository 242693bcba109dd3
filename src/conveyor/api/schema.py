"""The GraphQL schema, and its SDL as exported to `schema.graphql` beside this module (`python -m conveyor.api`)."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from conveyor.api import advanced
from conveyor.api.config import ApiConfig
from conveyor.api.errors import ErrorCodes, is_expected
from conveyor.api.limits import limit_extensions
from conveyor.api.mutation import Mutation
from conveyor.api.query import Query
from conveyor.api.readonly import BrowserWritesRefused, dashboard_read_only
from conveyor.api.subscription import Subscription
from conveyor.api.warnings import Warnings

log = logging.getLogger(__name__)


class ConveyorSchema(strawberry.Schema):
    """The schema, logging only the errors that point at a bug or an outage (with their traceback)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            if is_expected(error):
                log.debug("request refused: %s", error.message)
            else:
                log.error("unexpected error in %s", error.path, exc_info=error.original_error)


def build_schema(config: ApiConfig | None = None) -> ConveyorSchema:
    """The schema with the limits of `config` (production defaults when None)."""
    config = config or ApiConfig()
    extensions: list[Any] = [
        *limit_extensions(config),
        lambda: ErrorCodes(hide_suggestions=config.production),
        Warnings,
    ]
    if dashboard_read_only():
        extensions.append(BrowserWritesRefused)
    query = merge_types("Query", (Query, *advanced.QUERIES))
    mutation = merge_types("Mutation", (Mutation, *advanced.MUTATIONS))
    return ConveyorSchema(query=query, mutation=mutation, subscription=Subscription, extensions=extensions)


def schema_sdl() -> str:
    """The schema in SDL, as stored in `schema.graphql` beside this module."""
    return build_schema().as_str().rstrip("\n") + "\n"
