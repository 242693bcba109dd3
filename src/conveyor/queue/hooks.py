"""Hooks around enqueueing: cross-cutting behaviour (tracing, metrics) on the producer side.

A hook wraps the write of one `add` or `add_bulk` call. Inside it, before the write, a hook may add keys to each
job's BullMQ options (e.g. `tm`, the trace context BullMQ's own telemetry keeps there); after a successful write,
`Enqueue.ids` holds the new job ids. Hooks must be cheap and must not raise; an exception in a hook is logged and
ignored, and never stops a job from being added.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Enqueue:
    """Jobs about to be written to one queue.

    `jobs` are the prepared arguments of the `addJob` script (`name`, `opts`, `job_id`, `data_json`,
    `timestamp`); hooks may add keys to each job's `opts` dict before the write. `ids` is filled, in order, once
    the write succeeded.
    """

    queue: str
    jobs: Sequence[dict[str, Any]]
    ids: list[str] = field(default_factory=list)


class ProducerHook:
    """Base class: override `around_add`."""

    @contextlib.contextmanager
    def around_add(self, enqueue: Enqueue) -> Iterator[None]:
        """Wraps the Redis write of one `add`/`add_bulk` call; an exception from the write passes through."""
        yield


class ProducerHooks:
    """The producer hooks of an app, shared by all its queues; isolates producers from hook failures."""

    def __init__(self, hooks: Sequence[ProducerHook] = ()) -> None:
        self.hooks = list(hooks)

    def append(self, hook: ProducerHook) -> None:
        """Add a hook; it applies to every later `add`/`add_bulk` of every queue sharing this set."""
        self.hooks.append(hook)

    @contextlib.contextmanager
    def around_add(self, enqueue: Enqueue) -> Iterator[None]:
        """Enter every hook's wrapper, innermost last."""
        with contextlib.ExitStack() as stack:
            for hook in self.hooks:
                try:
                    stack.enter_context(hook.around_add(enqueue))
                except Exception:
                    log.exception("producer hook %s.around_add failed", type(hook).__name__)
            yield
