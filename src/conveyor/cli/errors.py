"""Exit codes, and the one place where errors become a one-line red message and an exit code.

| code | meaning |
|------|---------|
| 0 | success |
| 1 | the operation was refused or failed (job not found, job in the wrong state, queue busy, declined) |
| 2 | usage or validation error (bad option, bad JSON, unknown queue, invalid payload or job options) |
| 3 | Redis unavailable or out of memory, or a configuration error (invalid env var, `--app` not loadable) |

Redis out of memory (it refused a write at `maxmemory`) is 3, not 1: like an unreachable server it is the
infrastructure's state, not the job's or the input's; the same command succeeds once an operator raised
`maxmemory` or queues were drained, and a script that retries on 3 should retry it too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.cli.output import print_error
from conveyor.config import ConfigError
from conveyor.errors import ConveyorError
from conveyor.queue.errors import (
    EnqueueNotReplicatedError,
    InvalidPayloadError,
    InvalidQueueNameError,
    PayloadTooLargeError,
    ScheduleNotReplicatedError,
    UnknownQueueError,
)
from conveyor.redis.errors import EmbeddedRedisError, RedisOutOfMemoryError, RedisUnavailableError, RedisVersionError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")


class ExitCode(IntEnum):
    """The process exit codes of every `conveyor` command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3


class UsageError(ConveyorError):
    """An argument, option or input of the command is invalid; nothing was done."""


class RefusedError(ConveyorError):
    """The command was not carried out (e.g. the confirmation was declined)."""


_USAGE_ERRORS: tuple[type[BaseException], ...] = (
    UsageError,
    UnknownQueueError,
    InvalidQueueNameError,
    InvalidPayloadError,
    PayloadTooLargeError,
    ValidationError,
)
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    RedisUnavailableError,
    EnqueueNotReplicatedError,  # durable mode: too few replicas (the message says the job is on the master)
    ScheduleNotReplicatedError,
    RedisOutOfMemoryError,
    RedisVersionError,
    EmbeddedRedisError,
    ConfigError,
    SettingsError,  # an env var pydantic-settings could not even parse (e.g. CONVEYOR_QUEUES not JSON)
    RedisConnectionError,  # includes authentication errors
    RedisTimeoutError,
)


def exit_code_for(error: BaseException) -> ExitCode:
    """The exit code that reports `error`."""
    if isinstance(error, _USAGE_ERRORS):
        return ExitCode.USAGE
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return ExitCode.UNAVAILABLE
    return ExitCode.FAILED


def describe_validation(error: ValidationError) -> str:
    """A pydantic error as `field: message; field: message`."""
    return "; ".join(f"{'.'.join(str(part) for part in err['loc']) or 'value'}: {err['msg']}" for err in error.errors())


def message_for(error: BaseException) -> str:
    """The one-line message that reports `error`."""
    if isinstance(error, ValidationError):
        text = f"Invalid value ({describe_validation(error)})."
    elif isinstance(error, RedisConnectionError | RedisTimeoutError):
        text = f"Lost the connection to Redis ({error}). Check the server and REDIS_URL, then run the command again."
    elif isinstance(error, SettingsError):
        text = f"Invalid configuration: {error}. Fix the environment variable (or .env entry)."
    elif isinstance(error, ConveyorError):
        text = str(error)
    else:
        text = f"Unexpected error ({type(error).__name__}: {error}). Run with --verbose for the traceback."
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn any error raised in the block into a one-line red message and `typer.Exit(code)`."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except Exception as exc:
        log.debug("command failed", exc_info=True)  # the traceback, shown with --verbose
        print_error(message_for(exc))
        raise typer.Exit(exit_code_for(exc)) from None


def cli_command(func: Callable[P, None]) -> Callable[P, None]:
    """Run a command's body inside `reported_errors` (Typer still sees the original signature)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        with reported_errors():
            func(*args, **kwargs)

    return wrapper


def run_async(body: Coroutine[Any, Any, T]) -> T:
    """The sync bridge: run an async command body to completion in a fresh event loop (uvloop's, where
    installed: the worker's hot path is mostly event-loop and socket work)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(body)
    return uvloop.run(body)
