"""Where the CLI writes: Rich consoles for people, plain JSON for programs.

Rich is imported on first use, not with this module: `conveyor worker` prints a few plain lines and should not
pay for Rich's import at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def stdout() -> Console:
    """A console on the current stdout (made per call, so it follows redirection and terminal detection)."""
    from rich.console import Console

    return Console(highlight=False)


def stderr() -> Console:
    """A console on the current stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _line(to_stderr: bool, message: str, style: str) -> None:
    """One line, never wrapped, markup in the message shown as is. Without a style, or where Rich would not
    colour it anyway (not a terminal, no FORCE_COLOR), the line is written as is and Rich is not loaded."""
    stream = sys.stderr if to_stderr else sys.stdout
    if not style or not (stream.isatty() or os.environ.get("FORCE_COLOR")):
        stream.write(message + "\n")
        stream.flush()
        return
    from rich.text import Text

    (stderr() if to_stderr else stdout()).print(Text(message, style=style), soft_wrap=True)


def print_error(message: str) -> None:
    """Print an error as one red line on stderr (never wrapped, markup in the message shown as is)."""
    _line(True, f"Error: {message}", "bold red")


def print_warning(message: str) -> None:
    """Print a warning as one yellow line on stderr (never wrapped, markup in the message shown as is)."""
    _line(True, f"Warning: {message}", "yellow")


def say(message: str, style: str | None = None) -> None:
    """Print one line for people on stdout (markup in the message shown as is)."""
    _line(False, message, style or "")


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and enums as JSON-ready values (datetimes in ISO 8601, UTC)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """Write `value` as JSON on stdout, without colour or wrapping, for other programs."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def when(moment: datetime | None, *, precise: bool = False) -> str:
    """A UTC timestamp for people: `2026-01-24 10:00:00Z` (`precise`: `2026-01-24 10:00:00.123Z`), or `-`."""
    if moment is None:
        return "-"
    text = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return (text[:-3] if precise else text[:-7]) + "Z"


def ago(moment: datetime, now: datetime | None = None) -> str:
    """How long ago `moment` was: `0.8 s ago`, `3 min ago`, `2.0 h ago`."""
    seconds = max(0.0, ((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"
