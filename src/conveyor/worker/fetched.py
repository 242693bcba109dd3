"""A fetched job's hash, checked before the job runs: every field the worker reads, parsed once.

A job hash written by another tool, an older version or by hand may hold anything. Whatever is wrong with it
(bytes that are not UTF-8, `data` or `opts` that is not JSON, a counter or a time that is not an integer, an
option of the wrong type) becomes `CheckedJob.problem` here, never an exception: the worker fails that one job
with the problem as its reason, and the queue keeps serving.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from conveyor.queue.options import RATE_KEY_OPTION
from conveyor.redis.packing import first_undecodable
from conveyor.redis.scripts import FetchedJob, QueueScripts

TEXT_FIELDS = ("name", "data", "opts")
INTEGER_FIELDS = ("atm", "ats", "timestamp", "priority", "delay")  # BullMQ's; its scripts count on some of them
_INTEGER = re.compile(r"-?[0-9]{1,18}")  # what Redis' HINCRBY takes (a 64-bit integer), with room to count
_SHOWN = 40  # characters of a bad value quoted in a reason


@dataclass(frozen=True, slots=True)
class CheckedJob:
    """What the worker needs of a job hash: parsed when `problem` is None, safe defaults otherwise."""

    name: str
    data: Any
    opts: dict[str, Any]
    attempts_made: int
    problem: str | None = None

    @property
    def max_attempts(self) -> int:
        """Attempts the job may have (BullMQ's `attempts` option; at least 1)."""
        return max(1, int(self.opts.get("attempts") or 1))


async def taken_despite(
    scripts: QueueScripts, token: str, error: ResponseError, besides: str | None = None
) -> FetchedJob:
    """The job a fetch script took before it failed with `error` (it is locked with `token`), to be failed as
    malformed; re-raises `error` when the script took none, or when Redis forgot the script (load it)."""
    if isinstance(error, NoScriptError):
        raise error
    fetched = await scripts.taken_by(token, error=str(error), besides=besides)
    if fetched.job_id is None:
        raise error
    return fetched


def check_fields(fields: dict[str, str], fetch_error: str | None = None) -> CheckedJob:
    """Parse and check a job hash as `moveToActive` returned it (or `taken_despite`, with the script's error).
    Never raises."""
    problem = _text_problem(fields) or _integer_problem(fields)
    if problem is None and fetch_error is not None:
        problem = f"BullMQ's fetch script failed on it ({fetch_error})"
    attempts_made = _integer(fields.get("atm"))
    name = fields.get("name", "")
    if problem is not None:
        return CheckedJob(_printable(name), None, {}, attempts_made, problem)
    opts, problem = _options(fields.get("opts") or "{}")
    if problem is not None:
        return CheckedJob(name, None, {}, attempts_made, problem)
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError as exc:
        return CheckedJob(name, None, opts, attempts_made, f"field 'data' is not JSON ({exc})")
    return CheckedJob(name, data, opts, attempts_made)


def repairs(fields: dict[str, str]) -> dict[str, str]:
    """Values for BullMQ's counters (`atm`, `ats`) that are not integers: its scripts increment them (HINCRBY),
    which fails on anything else, after the job has left the active list. Stored with the job's failure."""
    return {field: "0" for field in ("atm", "ats") if not _INTEGER.fullmatch(fields.get(field) or "0")}


def _text_problem(fields: dict[str, str]) -> str | None:
    for field in TEXT_FIELDS:
        found = first_undecodable(fields.get(field, ""))
        if found is not None:
            offset, byte = found
            pickled = " (it looks like a Python pickle; payloads must be JSON)" if offset == 0 and byte == 0x80 else ""
            return f"field {field!r} is not UTF-8 (byte 0x{byte:02x} at character {offset}){pickled}"
    return None


def _integer_problem(fields: dict[str, str]) -> str | None:
    for field in INTEGER_FIELDS:
        value = fields.get(field)
        if value and not _is_integer_text(value):
            return f"field {field!r} is not an integer ({_quoted(value)})"
    return None


def _options(raw: str) -> tuple[dict[str, Any], str | None]:
    try:
        opts = json.loads(raw)
    except ValueError as exc:
        return {}, f"field 'opts' is not JSON ({exc})"
    if not isinstance(opts, dict):
        return {}, f"field 'opts' is not a JSON object ({_quoted(raw)})"
    for option, value in opts.items():  # the options a job has: usually fewer than the rules
        rule = _OPTION_TYPES.get(option)
        if rule is not None and value is not None and not rule[0](value):
            return {}, f"option {option!r} is not {rule[1]} ({_quoted(json.dumps(value))})"
    if isinstance(opts.get("backoff"), int):  # BullMQ's short form: a fixed delay
        opts["backoff"] = {"type": "fixed", "delay": opts["backoff"]}
    return opts, None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_backoff(value: Any) -> bool:
    if _is_int(value):
        return True
    return (
        isinstance(value, dict)
        and isinstance(value.get("type", ""), str | None)
        and all(value.get(key) is None or _is_number(value[key]) for key in ("delay", "jitter"))
    )


def _is_keep(value: Any) -> bool:
    if isinstance(value, bool | int):
        return True
    return isinstance(value, dict) and all(_is_int(value[key]) for key in ("count", "age", "limit") if key in value)


_OPTION_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "attempts": (_is_int, "an integer"),
    "delay": (_is_int, "an integer"),
    "priority": (_is_int, "an integer"),
    "timeout": (_is_number, "a number"),
    "deadline": (_is_number, "a number"),
    "backoff": (_is_backoff, "a backoff (a delay, or {type, delay, jitter})"),
    "removeOnComplete": (_is_keep, "a keep rule (true, a count, or {count, age, limit})"),
    "removeOnFail": (_is_keep, "a keep rule (true, a count, or {count, age, limit})"),
    RATE_KEY_OPTION: (lambda value: isinstance(value, str), "a string"),
}


def _is_integer_text(value: str) -> bool:
    if value.isascii() and value.isdigit():  # the usual case, without the pattern
        return len(value) <= 18
    return _INTEGER.fullmatch(value) is not None


def _integer(value: str | None) -> int:
    return int(value) if value and _is_integer_text(value) else 0


def _quoted(value: str) -> str:
    shown = ascii(value[:_SHOWN])
    return shown if len(value) <= _SHOWN else f"{shown}…"


def _printable(text: str) -> str:
    """`text` with escaped bytes shown as U+FFFD, for names in logs and metrics."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
