"""Errors the API returns: each has a stable `extensions.code`; anything unexpected is masked and logged.

`ApiError` is raised by resolvers for refusals of the API itself (authentication, limits, bad cursors).
Errors of the layers below keep their messages (they say what to do) and get a code from `CODES`.
`ErrorCodes` is the schema extension that stamps the code on every error of a response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import StreamExecutionResult

from conveyor.api.tokens import TokenError
from conveyor.queue.dlq import DeadLetterSelectionError
from conveyor.queue.errors import (
    EnqueueNotReplicatedError,
    EnqueueUnconfirmedError,
    InvalidOptionsError,
    InvalidPayloadError,
    InvalidQueueNameError,
    JobNotFoundError,
    JobStateError,
    PayloadTooLargeError,
    QueueBusyError,
    ScheduleNotReplicatedError,
    UnknownQueueError,
)
from conveyor.queue.events import InvalidEventIdError
from conveyor.queue.flows import FlowError
from conveyor.queue.schedules import ScheduleNotFoundError
from conveyor.queue.tenants import QuotaExceededError, TenantError, UnknownTenantError
from conveyor.redis.errors import RedisOutOfMemoryError, RedisUnavailableError

log = logging.getLogger(__name__)


class ErrorCode(StrEnum):
    """Every `extensions.code` the API returns."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    UNKNOWN_QUEUE = "UNKNOWN_QUEUE"
    JOB_NOT_FOUND = "JOB_NOT_FOUND"
    AMBIGUOUS_JOB = "AMBIGUOUS_JOB"
    JOB_STATE_CONFLICT = "JOB_STATE_CONFLICT"
    QUEUE_BUSY = "QUEUE_BUSY"
    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    INVALID_OPTIONS = "INVALID_OPTIONS"
    BAD_CURSOR = "BAD_CURSOR"
    INVALID_EVENT_ID = "INVALID_EVENT_ID"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    INDEX_NOT_FOUND = "INDEX_NOT_FOUND"
    EMBEDDINGS_UNAVAILABLE = "EMBEDDINGS_UNAVAILABLE"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    TOO_MANY_TOKENS = "TOO_MANY_TOKENS"
    INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT"
    MALFORMED_JSON = "MALFORMED_JSON"
    REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    BAD_REQUEST = "BAD_REQUEST"
    REDIS_UNAVAILABLE = "REDIS_UNAVAILABLE"
    REDIS_OUT_OF_MEMORY = "REDIS_OUT_OF_MEMORY"
    NOT_REPLICATED = "NOT_REPLICATED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    UNKNOWN_TENANT = "UNKNOWN_TENANT"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ApiError(Exception):
    """A refusal by the API, with its code and a message that says what to do."""

    def __init__(self, code: ErrorCode, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.code = code
        self.extensions = extensions


CODES: dict[type[Exception], ErrorCode] = {
    UnknownQueueError: ErrorCode.UNKNOWN_QUEUE,
    InvalidQueueNameError: ErrorCode.UNKNOWN_QUEUE,
    JobNotFoundError: ErrorCode.JOB_NOT_FOUND,
    JobStateError: ErrorCode.JOB_STATE_CONFLICT,
    QueueBusyError: ErrorCode.QUEUE_BUSY,
    InvalidPayloadError: ErrorCode.INVALID_PAYLOAD,
    PayloadTooLargeError: ErrorCode.PAYLOAD_TOO_LARGE,
    InvalidEventIdError: ErrorCode.INVALID_EVENT_ID,
    TokenError: ErrorCode.BAD_USER_INPUT,
    # advanced job control (issue 6)
    QuotaExceededError: ErrorCode.QUOTA_EXCEEDED,
    UnknownTenantError: ErrorCode.UNKNOWN_TENANT,
    TenantError: ErrorCode.BAD_USER_INPUT,
    ScheduleNotFoundError: ErrorCode.SCHEDULE_NOT_FOUND,
    InvalidOptionsError: ErrorCode.INVALID_OPTIONS,
    DeadLetterSelectionError: ErrorCode.BAD_USER_INPUT,
    FlowError: ErrorCode.BAD_USER_INPUT,
    RedisOutOfMemoryError: ErrorCode.REDIS_OUT_OF_MEMORY,  # its message says what an operator must do
    ScheduleNotReplicatedError: ErrorCode.NOT_REPLICATED,  # durable mode: saved on the master only
}
REDIS_DOWN = (RedisUnavailableError, RedisConnectionError, RedisTimeoutError)
INTERNAL_MESSAGE = "Internal server error; the server log has the details."
REDIS_MESSAGE = "Redis is unavailable. Try again shortly."
UNCONFIRMED_MESSAGE = (
    "Redis did not confirm the add: the job may or may not have been added. Adding it again with the same jobId "
    "(in extensions.jobIds) is safe: an id that exists adds nothing."
)
# graphql-core's hints at names the schema has ("Did you mean 'queue'?", "… the enum value 'FAILED'?"); GraphQL
# names hold no "?", so the hint ends at the first one.
SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def _validation_message(exc: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '(options)'}: {err['msg']}" for err in exc.errors()]
    return "Invalid job options: " + "; ".join(parts)


def describe(error: GraphQLError) -> tuple[str, dict[str, Any]]:
    """The message and extensions a client sees for an error (masking anything unexpected)."""
    original = error.original_error
    extensions = dict(error.extensions or {})
    # Errors without a path come before execution (parsing, validation, coercing variables: a scalar's
    # parser raising ValueError); their messages describe the client's input, so they are kept.
    request_error = error.path is None and isinstance(original, GraphQLError | ValueError | TypeError)
    if original is None or request_error:
        if "code" not in extensions:
            extensions["code"] = _request_code(error)
        return error.message, extensions
    if isinstance(original, ApiError):
        return str(original), {**extensions, **original.extensions, "code": original.code.value}
    if isinstance(original, ValidationError):
        return _validation_message(original), {**extensions, "code": ErrorCode.INVALID_OPTIONS.value}
    if (enqueue := _enqueue_error(original, extensions)) is not None:
        return enqueue
    if isinstance(original, REDIS_DOWN):
        return REDIS_MESSAGE, {**extensions, "code": ErrorCode.REDIS_UNAVAILABLE.value}
    for kind, code in CODES.items():
        if isinstance(original, kind):
            if isinstance(original, InvalidPayloadError) and original.fields:
                extensions["fields"] = original.fields
            return str(original), {**extensions, "code": code.value}
    return INTERNAL_MESSAGE, {"code": ErrorCode.INTERNAL_SERVER_ERROR.value}


def _enqueue_error(original: Exception, extensions: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """An add whose outcome is uncertain carries the job ids to add again: Redis did not confirm it (unreachable),
    or, in durable mode, the master added it but too few replicas acknowledged it."""
    if isinstance(original, EnqueueNotReplicatedError):
        return str(original), {**extensions, "code": ErrorCode.NOT_REPLICATED.value, "jobIds": original.job_ids}
    if isinstance(original, EnqueueUnconfirmedError):
        unconfirmed = {"code": ErrorCode.REDIS_UNAVAILABLE.value, "jobIds": original.job_ids}
        return UNCONFIRMED_MESSAGE, {**extensions, **unconfirmed}
    return None


def _request_code(error: GraphQLError) -> str:
    if isinstance(error, GraphQLSyntaxError):
        if "tokens" in error.message and "Parsing aborted" in error.message:
            return ErrorCode.TOO_MANY_TOKENS.value
        return ErrorCode.GRAPHQL_PARSE_FAILED.value
    if error.message.startswith("Variable '$"):
        return ErrorCode.BAD_USER_INPUT.value
    return ErrorCode.GRAPHQL_VALIDATION_FAILED.value


def is_expected(error: GraphQLError) -> bool:
    """False for errors that come from a bug or an outage (logged with their traceback)."""
    original = error.original_error
    if original is None or isinstance(original, ApiError | ValidationError) or error.path is None:
        return True
    return any(isinstance(original, kind) for kind in CODES)


def shape(error: GraphQLError, *, hide_suggestions: bool = False) -> GraphQLError:
    """The error as the client sees it (without "Did you mean …?" hints at the schema's names when
    `hide_suggestions`: production mode, where introspection is off too)."""
    message, extensions = describe(error)
    if hide_suggestions:
        message = SUGGESTION.sub("", message)
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Gives every error of a result (queries, mutations and each subscription event) a stable code, and
    masks unexpected ones; with `hide_suggestions` (production mode) it drops "Did you mean …?" hints, which
    would reveal the schema's field, argument and enum names that introspection is turned off to keep."""

    def __init__(self, *, hide_suggestions: bool = False) -> None:
        self.hide_suggestions = hide_suggestions

    def _process(self, result: object) -> None:
        errors = getattr(result, "errors", None)
        if errors:
            shaped = [shape(error, hide_suggestions=self.hide_suggestions) for error in errors]
            result.errors = shaped  # type: ignore[attr-defined]

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        self._process(result)  # shaping is idempotent: a streamed result may pass here a second time
        self._process(getattr(result, "initial_result", None))

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        self._process(result)
        yield None


def error_body(code: ErrorCode, message: str) -> dict[str, Any]:
    """A GraphQL-shaped response body for a request refused before execution."""
    return {"data": None, "errors": [{"message": message, "extensions": {"code": code.value}}]}
