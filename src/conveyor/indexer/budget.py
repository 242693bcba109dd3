"""The time a search may take, enforced inside SQLite and between the steps done in Python.

SQLite calls a progress handler every few thousand virtual-machine instructions; returning non-zero from it
interrupts the running statement, which is how a query that would otherwise scan for minutes is stopped at
its deadline. Work done in Python between statements (verifying candidate lines) checks the same deadline.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from conveyor.indexer.errors import SearchTimeoutError

DEFAULT_SEARCH_TIMEOUT_S = 2.0
PROGRESS_EVERY = 10_000  # SQLite instructions between deadline checks (a few hundred microseconds)


class SearchBudget:
    """A deadline for one search. `now` is injectable so tests need not wait."""

    def __init__(self, seconds: float, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.now = now
        self.deadline = now() + seconds

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.now() >= self.deadline

    def check(self) -> None:
        """Raise `SearchTimeoutError` once the deadline has passed."""
        if self.expired():
            raise SearchTimeoutError(self.seconds)

    @contextmanager
    def guarding(self, db: sqlite3.Connection) -> Iterator[None]:
        """Interrupt any statement on `db` that runs past the deadline (as `SearchTimeoutError`)."""
        db.set_progress_handler(lambda: 1 if self.expired() else 0, PROGRESS_EVERY)
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise SearchTimeoutError(self.seconds) from exc
            raise
        finally:
            db.set_progress_handler(None, 0)
