"""Structured logs: JSON or console lines, each carrying the job it was written for.

The worker puts the running job in a context variable for the length of the attempt
(`conveyor.worker.context.current_job`); a logging filter on the handler copies it onto every record (`queue`,
`job_id`, `job_type`, `attempt`, `worker`). Tasks and handler threads inherit context variables, so lines logged
by handlers carry the job too. JSON lines also carry the active
OpenTelemetry trace and span ids, when there are some, to jump from a log line to its trace.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from conveyor.observability.settings import ObservabilitySettings
from conveyor.worker.context import current_job

JOB_FIELDS = ("queue", "job_id", "job_type", "attempt", "worker")
# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the JSON line.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JobContextFilter(logging.Filter):
    """Adds the current job's fields to each record (unless the record names a job itself via `extra=`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drops one."""
        job = current_job.get()
        if job is not None and not hasattr(record, "job_id"):
            record.queue = job.queue
            record.job_id = job.id
            record.job_type = job.type
            record.attempt = job.attempt
            record.worker = job.worker
        return True


def _trace_ids() -> dict[str, str]:
    try:
        from opentelemetry import trace
    except ImportError:  # the `otel` extra is not installed
        return {}
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": format(context.trace_id, "032x"), "span_id": format(context.span_id, "016x")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, job fields, `extra=` fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRS})
        line.update(_trace_ids())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Readable lines for a terminal, with the job fields in brackets when there is a job."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The message line, then `[queue=… job=… type=… attempt=… worker=…]`."""
        text = super().formatMessage(record)
        if hasattr(record, "job_id"):
            fields = " ".join(f"{name}={getattr(record, name, '')}" for name in JOB_FIELDS)
            text = f"{text} [{fields}]"
        return text


class ConveyorLogHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (one at a time: configuring again replaces it)."""


def configure_logging(
    format: str | None = None,
    level: str | int | None = None,
    *,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every log record to `stream` (stderr) as JSON or console lines, with the job fields of the job it
    was logged for. Unset arguments come from CONVEYOR_LOG_FORMAT (`json` | `console`) and CONVEYOR_LOG_LEVEL.

    Returns the installed handler; calling again replaces it rather than doubling every line.
    """
    if format is None or level is None:
        settings = ObservabilitySettings()
        format = format or settings.conveyor_log_format
        level = level if level is not None else settings.conveyor_log_level
    if format not in ("json", "console"):
        raise ValueError(f"log format must be 'json' or 'console', not {format!r}")
    handler = ConveyorLogHandler(stream or sys.stderr)
    handler.addFilter(JobContextFilter())
    handler.setFormatter(JsonFormatter() if format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ConveyorLogHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
